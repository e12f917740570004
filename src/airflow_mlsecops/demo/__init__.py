"""``mlsecops demo`` and the generated data the example DAGs run on (nothing is downloaded)."""
