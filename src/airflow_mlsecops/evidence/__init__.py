"""The evidence core: gate results, in-toto statements, DSSE signing, the ledger. No Airflow import."""
