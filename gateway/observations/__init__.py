"""Residents' observations (what the sensors cannot see) and the monitors' decisions on them, in
InfluxDB beside the readings (records.py), photos as files named by hash; the observers' codes and
the monitors' accounts, which are secrets rather than records, in SQLite in the data directory
(store.py, accounts.py)."""
