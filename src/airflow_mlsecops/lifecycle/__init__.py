"""After the gates: recording and verifying evidence, approval, registration, promotion and rollback."""
