"""minewatch gateway: subscribe, validate, store in InfluxDB, alert."""
