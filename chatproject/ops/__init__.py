"""Operability: health and readiness probes, Prometheus metrics, structured logs.

Ground floor: imports only Django, chatproject.core and third-party libraries, so every layer
(the gateway, the bus, the apps) may call into it, and it never calls back.
"""
