"""Enrichment providers: firmographics per company domain, joined onto a batch of leads."""
