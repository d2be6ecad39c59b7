"""Alerts: rules over the stored readings, one state machine per (rule, node), events to channels.

engine.py decides, store.py remembers, gateway/channels/ deliver; service.py wires them into the
gateway's hooks (docs/alerts.md).
"""
