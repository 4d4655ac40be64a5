"""The analysis's records: the run manifest (what a configuration asks for), the archive of
finished runs, the catalogue of every table and figure, provenance, and writing outputs.
"""
