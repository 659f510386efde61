"""Test helpers shipped with autodlgym for authors of extensions.

:mod:`autodlgym.testing.searchers` holds the searcher conformance suite: subclass
``SearcherConformance`` in a pytest module, override its ``searcher_factory`` fixture, and
every contract of the searcher interface is checked for your searcher. It needs pytest.
"""
