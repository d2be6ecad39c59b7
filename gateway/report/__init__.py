"""The regulators' report: `data` queries InfluxDB, `plots` draws, `render` writes HTML and PDF."""
