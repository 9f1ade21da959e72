"""Pulumi entry point: load the stack config, build the gateway, export its outputs."""

from provision.deploy.program import build

gateway = build()
