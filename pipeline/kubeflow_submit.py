"""Submit a compiled pipeline to Kubeflow Pipelines or Vertex AI Pipelines.

The checks here ask the target once, before anything is compiled, so a
missing credential or an unreachable endpoint is one readable line within
seconds rather than a timeout after compiling. Every failure is a
`DeployError` whose message is one line.
"""

from __future__ import annotations

import argparse
import datetime
import urllib.error
import urllib.request
import warnings

from metadata.errors import first_line
from pipeline.configs import PipelineConfig
from pipeline.kubeflow import DeployError


def _kfp_host(host: str) -> str:
    """The endpoint as kfp.Client reads it: https:// unless a scheme is given."""
    host = host.rstrip("/")
    return host if host.startswith(("http://", "https://")) else f"https://{host}"


def check_kfp_endpoint(host: str, token: str | None, timeout: float = 10.0) -> None:
    """Fail fast, in one line, when the endpoint is unreachable or wants credentials.

    kfp.Client retries its health check for ~25 s and then reports a bare
    timeout; this asks the same endpoint once. Like kfp.Client, it ignores
    proxy variables.
    """
    url = f"{_kfp_host(host)}/apis/v2beta1/healthz"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
            content_type = r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise DeployError(
                f"Kubeflow Pipelines at {host} refused the request (HTTP {error.code}): "
                "missing or invalid credentials; set KFP_TOKEN (or --token)"
            ) from None
        raise DeployError(f"{url} answered HTTP {error.code}: is {host} a Kubeflow Pipelines "
                          "v2 endpoint?") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeployError(f"cannot reach Kubeflow Pipelines at {host}: {reason}") from None
    if "json" not in content_type:
        raise DeployError(f"Kubeflow Pipelines at {host} answered with a login page, not the "
                          "API: credentials needed; set KFP_TOKEN (or --token)")


def check_google_credentials() -> None:
    """Fail fast, in one line, when there are no Application Default Credentials."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError as error:
        found = "default credentials were not found" not in first_line(error).lower()
        problem = f"unusable ({first_line(error)})" if found else "not found"
        raise DeployError(
            f"Google Cloud credentials {problem}: run `gcloud auth application-default "
            "login` or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
        ) from None


def submit_to_kfp(package_path: str, config: PipelineConfig, args: argparse.Namespace) -> str:
    """Start a run on Kubeflow Pipelines; return the run's page."""
    import kfp
    import kfp_server_api
    import urllib3

    host = _kfp_host(args.host)
    warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")
    try:
        client = kfp.Client(host=host, existing_token=args.token or None,
                            namespace=args.namespace or "kubeflow")
        result = client.create_run_from_pipeline_package(
            package_path,
            arguments={},
            run_name=f"{config.pipeline_name} {datetime.datetime.now():%Y-%m-%d %H-%M-%S}",
            experiment_name=args.experiment,
            namespace=args.namespace or None,
            pipeline_root=config.pipeline_root,
            enable_caching=False if args.no_cache else None,
        )
    except kfp_server_api.ApiException as error:
        if error.status in (401, 403):
            raise DeployError(f"Kubeflow Pipelines at {args.host} refused the run (HTTP "
                              f"{error.status}): set KFP_TOKEN (or --token)") from None
        raise DeployError(f"Kubeflow Pipelines at {args.host} rejected the run (HTTP "
                          f"{error.status} {error.reason}): {first_line(error)}") from None
    except urllib3.exceptions.HTTPError as error:
        raise DeployError(f"cannot reach Kubeflow Pipelines at {args.host}: "
                          f"{first_line(error)}") from None
    return f"{host}/#/runs/details/{result.run_id}"


def submit_to_vertex(package_path: str, config: PipelineConfig, args: argparse.Namespace) -> str:
    """Start a run on Vertex AI Pipelines; return the run's console page."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud import aiplatform

    try:
        job = aiplatform.PipelineJob(
            display_name=config.pipeline_name,
            template_path=package_path,
            pipeline_root=config.pipeline_root,
            enable_caching=False if args.no_cache else None,
            project=args.project,
            location=args.region,
        )
        job.submit(service_account=args.service_account or None)
    except auth_exceptions.GoogleAuthError as error:
        raise DeployError(f"Google Cloud credentials did not work ({first_line(error)}); run "
                          "`gcloud auth application-default login`") from None
    except api_exceptions.GoogleAPIError as error:
        raise DeployError(f"Vertex AI in {args.project}/{args.region} did not accept the run: "
                          f"{first_line(error)}") from None
    return (f"https://console.cloud.google.com/vertex-ai/locations/{args.region}/pipelines/"
            f"runs/{job.name}?project={args.project}")

