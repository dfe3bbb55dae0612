"""The kinds' figures: each kind's report facet, imported only when a report is drawn."""
