"""Observations from residents (what the sensors cannot see), their observers' codes and the
monitors' decisions on them: gateway-local state in `<data_dir>/observations.sqlite`, photos beside it."""
