"""Provisioning for the LLM gateway: config model, tenant compiler, renderer, Pulumi component, local runtime, CLI."""
