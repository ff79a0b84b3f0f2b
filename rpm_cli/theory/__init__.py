"""Closed-form linear-Gaussian RPM theory lab (Sec. 3-4, App. A-C of Aitchison & Ganev, TMLR 2024).

`gaussian` holds the closed forms, `montecarlo` an independent sampling code path, and `lab` the checks
that compare them (`validate_theory`, `run_theory`, `format_table`).
"""
