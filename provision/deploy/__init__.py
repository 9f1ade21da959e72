"""The deploy: the Pulumi component and its resources, the Worker's bindings, Durable Object
migrations from the live tag, Cloudflare's API budget and the plan of a change."""
