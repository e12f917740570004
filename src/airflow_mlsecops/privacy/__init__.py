"""Privacy: differentially private evidence (OpenDP), the sensitive-data policy, encrypted scoring (TenSEAL).

Every module here imports its heavy library (opendp, tenseal) inside functions; both are optional
extras (``privacy``, ``he``).
"""
