"""Knowledge-graph logical-query datasets: the BetaE / Query2Box release format, a generator from triples, and a WordNet KG (work in progress)."""
