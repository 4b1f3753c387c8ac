"""``mera-mm report``: one self-contained HTML page comparing runs (scores, skills, samples)."""
