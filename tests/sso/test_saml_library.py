"""The XML-signature stack is installed consistently (lxml and xmlsec share one libxml2)."""

from __future__ import annotations

import xmlsec
from lxml import etree


def test_lxml_and_xmlsec_are_linked_against_the_same_libxml2() -> None:
    # A mismatch makes xmlsec refuse to work at import or sign time; pyproject pins the pair.
    assert xmlsec.get_libxml_version() == etree.LIBXML_VERSION
