"""The local stack: the SAM template run on a laptop with moto standing in for AWS (never deployed)."""
