"""Where the providers that need more than a key live: the stack's routing.vertexAi,
routing.azureOpenai, routing.awsBedrock and routing.customProviders. AI Gateway's path for each names a project, a
resource and deployment, or a region (cf-contract-2 1.1); the Worker builds it from these.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

AZURE_API_VERSION = r"^\d{4}-\d{2}-\d{2}(-preview)?$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False, frozen=True)


class VertexAi(Strict):
    """Where Google Vertex AI serves this stack's google-vertex-ai models (AI Gateway's path
    names the project and the region)."""

    project: str = Field(
        pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", description="Google Cloud project id"
    )
    region: str = Field(
        pattern=r"^(global|[a-z]+-[a-z]+[0-9]+)$",
        description="e.g. us-central1, europe-west4, global",
    )


class AzureDeployment(Strict):
    """One azure-openai model's deployment on the resource."""

    deployment: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="the deployment's name on the Azure OpenAI resource",
    )
    apiVersion: str | None = Field(
        None,
        pattern=AZURE_API_VERSION,
        description="this deployment's api-version; unset = the resource's",
    )


class AzureOpenai(Strict):
    """The Azure OpenAI resource of this stack's azure-openai models. A model
    `azure-openai/<name>` is served by `deployments[<name>]`; <name> is the model the deployment
    runs (gpt-4o-mini), which names its catalog price."""

    resource: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="the resource name (the <resource> of <resource>.openai.azure.com)",
    )
    apiVersion: str = Field(
        pattern=AZURE_API_VERSION, description="the api-version every request names by default"
    )
    deployments: dict[str, AzureDeployment] = Field(
        min_length=1, description="model name (after azure-openai/) → its deployment"
    )


class AwsBedrock(Strict):
    """The AWS region of this stack's aws-bedrock models (AI Gateway's path names it; a
    cross-region inference profile such as us.anthropic.… is called from its source region)."""

    region: str = Field(
        pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", description="e.g. us-east-1, eu-central-1"
    )


class CustomProvider(Strict):
    """A team's own OpenAI-compatible server (vLLM, Ollama, TGI) as an AI Gateway custom provider
    `custom-<slug>`: `pulumi up` creates it, AI Gateway forwards `custom-<slug>/chat/completions`
    to `<baseUrl>/chat/completions`, and its models are `custom-<slug>/<model>`, priced in
    pricing.models (the catalog does not know them)."""

    baseUrl: str = Field(
        pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$",
        max_length=512,
        description="the server's OpenAI API root over HTTPS, e.g. https://vllm.internal.example/v1",
    )
    name: str | None = Field(None, max_length=100, description="shown in AI Gateway's dashboard")
