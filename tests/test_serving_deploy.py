"""TF Serving configuration, compose file and Kubernetes manifests agree with the code.

Config files are parsed strictly as the protobuf messages TF Serving reads:
ModelServerConfig from tensorflow-serving-api; BatchingParameters and
MonitoringConfig (not shipped in that package) from descriptors transcribed
below from TF Serving's .proto files. Kubernetes objects are checked against
the Kubernetes API models of the `kubernetes` client (an unknown or misspelt
field fails), and rendered with `kubectl kustomize` where kubectl exists.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, text_format, wrappers_pb2

import serving
from models import contract
from pipeline.configs import PipelineConfig
from serving import client, rollout_config, warmup

ROOT = Path(__file__).resolve().parent.parent
SERVING = ROOT / "serving"
CONFIG_FILES = ("batching_parameters.txt", "monitoring.config")  # mounted read-only
K8S_FILES = ("k8s/models-pvc.yaml", "k8s/deployment.yaml", "k8s/service.yaml")


# --------------------------------------------------------------------------- protos


def _message_classes():
    """BatchingParameters (session_bundle_config.proto) and MonitoringConfig
    (monitoring_config.proto), package tensorflow.serving, as TF Serving defines them."""
    from google.protobuf import message_factory

    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="tf_serving_test_configs.proto", package="tensorflow.serving.test",
        syntax="proto3", dependency=["google/protobuf/wrappers.proto"],
    )

    def add(message: str, fields: list[tuple]) -> None:
        descriptor = proto.message_type.add(name=message)
        for name, number, kind, type_name, label in fields:
            descriptor.field.add(name=name, number=number, type=kind, label=label,
                                 type_name=type_name)

    optional, repeated = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    int64 = (f.TYPE_MESSAGE, ".google.protobuf.Int64Value", optional)
    add("BatchingParameters", [
        ("max_batch_size", 1, *int64),
        ("batch_timeout_micros", 2, *int64),
        ("max_enqueued_batches", 3, *int64),
        ("num_batch_threads", 4, *int64),
        ("thread_pool_name", 5, f.TYPE_MESSAGE, ".google.protobuf.StringValue", optional),
        ("allowed_batch_sizes", 6, f.TYPE_INT64, None, repeated),
        ("pad_variable_length_inputs", 7, f.TYPE_BOOL, None, optional),
    ])
    add("PrometheusConfig", [
        ("enable", 1, f.TYPE_BOOL, None, optional),
        ("path", 2, f.TYPE_STRING, None, optional),
    ])
    add("MonitoringConfig", [
        ("prometheus_config", 1, f.TYPE_MESSAGE, ".tensorflow.serving.test.PrometheusConfig",
         optional),
    ])
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(proto.SerializeToString())
    return {
        name: message_factory.MessageFactory(pool).GetPrototype(
            pool.FindMessageTypeByName(f"tensorflow.serving.test.{name}")
        )
        for name in ("BatchingParameters", "MonitoringConfig")
    }


MESSAGES = _message_classes()


def parse(file: str, message):
    """Strict text-format parse: an unknown field or a bad value fails."""
    return text_format.Parse((SERVING / file).read_text(), message)


def test_models_config_serves_the_newest_pushed_version():
    from tensorflow_serving.config import model_server_config_pb2

    config = parse("models.config", model_server_config_pb2.ModelServerConfig())
    [model] = config.model_config_list.config
    assert model.name == contract.MODEL_NAME == serving.MODEL_NAME
    assert model.base_path == serving.MODEL_BASE_PATH == f"/models/{contract.MODEL_NAME}"
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model.model_version_policy.latest.num_versions == 1


def test_batching_parameters_match_the_client_and_the_warmup():
    batching = parse("batching_parameters.txt", MESSAGES["BatchingParameters"]())
    assert batching.max_batch_size.value == contract.MAX_BATCH_SIZE
    # The client never sends a request the batcher would refuse ...
    assert client.parse_args([]).batch_size <= batching.max_batch_size.value
    # ... and warm-up covers batches up to the largest the server forms.
    assert max(warmup.WARMUP_BATCH_SIZES) == batching.max_batch_size.value
    assert batching.HasField("batch_timeout_micros")
    assert batching.num_batch_threads.value >= 1
    assert batching.max_enqueued_batches.value >= batching.num_batch_threads.value
    assert not batching.allowed_batch_sizes  # no padding on CPU


def test_monitoring_config_exposes_prometheus_metrics():
    monitoring = parse("monitoring.config", MESSAGES["MonitoringConfig"]())
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path == serving.PROMETHEUS_PATH


# --------------------------------------------------------------------------- compose


def server_flags(arguments: list[str]) -> dict[str, str]:
    flags = {}
    for argument in arguments:
        assert argument.startswith("--") and "=" in argument, argument
        name, value = argument[2:].split("=", 1)
        flags[name] = value
    return flags


def check_server_flags(flags: dict[str, str], mounted_configs: dict[str, str]) -> None:
    """Ports, config files and batching as the code and config files expect."""
    assert flags["port"] == str(serving.GRPC_PORT)
    assert flags["rest_api_port"] == str(serving.REST_PORT)
    assert flags["enable_batching"] == "true"
    assert flags["file_system_poll_wait_seconds"] == "1"
    # The live config beside the pushed versions (serving/rollout_config.py), re-read
    # while serving; a first config may label a version still loading.
    assert flags["model_config_file"] == f"{serving.MODELS_DIR}/{rollout_config.LIVE_CONFIG_NAME}"
    assert flags["model_config_file_poll_wait_seconds"] == str(rollout_config.CONFIG_POLL_SECONDS)
    assert flags["allow_version_labels_for_unavailable_models"] == "true"
    for flag, file in [("batching_parameters_file", "batching_parameters.txt"),
                       ("monitoring_config_file", "monitoring.config")]:
        assert flags[flag] == f"{serving.CONFIG_DIR}/{file}"
        assert mounted_configs[flags[flag]] == file


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((SERVING / "docker-compose.yaml").read_text())


def test_compose_serves_the_pipelines_pushed_models(compose):
    [service] = compose["services"].values()
    assert service["image"] == serving.TF_SERVING_IMAGE
    assert service["ports"] == [f"{serving.GRPC_PORT}:{serving.GRPC_PORT}",
                                f"{serving.REST_PORT}:{serving.REST_PORT}"]
    mounts = {v["target"]: v for v in service["volumes"]}
    assert all(v["type"] == "bind" and v["read_only"] for v in mounts.values())
    # Relative sources are relative to the compose file's folder.
    models = (SERVING / mounts[serving.MODELS_DIR]["source"]).resolve()
    default_output = ROOT / PipelineConfig().output_dir
    assert models == Path(PipelineConfig(output_dir=str(default_output)).serving_model_dir).parent
    configs = {}
    for target, mount in mounts.items():
        if target != serving.MODELS_DIR:
            source = (SERVING / mount["source"]).resolve()
            assert source.parent == SERVING and source.is_file()
            configs[target] = source.name
    assert sorted(configs.values()) == sorted(CONFIG_FILES)
    assert service["entrypoint"] == ["/usr/bin/tensorflow_model_server"]
    check_server_flags(server_flags(service["command"]), configs)


# --------------------------------------------------------------------------- kubernetes


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    documents = [yaml.safe_load((SERVING / f).read_text()) for f in K8S_FILES]
    return {d["kind"]: d for d in documents}


@pytest.mark.parametrize("kind", ["Deployment", "Service", "PersistentVolumeClaim"])
def test_manifests_are_valid_kubernetes_objects(manifests, kind):
    from kubernetes import client as k8s

    api = k8s.ApiClient()
    model = {"Deployment": "V1Deployment", "Service": "V1Service",
             "PersistentVolumeClaim": "V1PersistentVolumeClaim"}[kind]
    # The client's deserializer drops fields its API model does not know, so
    # a round trip that changes the document means an unknown or misspelt field.
    obj = api._ApiClient__deserialize(manifests[kind], model)
    assert api.sanitize_for_serialization(obj) == manifests[kind]


def container(manifests) -> dict:
    [tf_serving] = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return tf_serving


def test_deployment_runs_the_same_server_as_compose(manifests, compose):
    deployment = manifests["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    tf_serving = container(manifests)
    assert tf_serving["image"] == serving.TF_SERVING_IMAGE
    assert tf_serving["command"] == compose["services"]["tf-serving"]["entrypoint"]
    mounts = {m["name"]: m for m in tf_serving["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["config"]["mountPath"] == serving.CONFIG_DIR
    assert mounts["models"]["mountPath"] == serving.MODELS_DIR
    assert mounts["config"]["readOnly"] and mounts["models"]["readOnly"]
    claim = volumes["models"]["persistentVolumeClaim"]["claimName"]
    assert claim == manifests["PersistentVolumeClaim"]["metadata"]["name"]
    kustomization = yaml.safe_load((SERVING / "kustomization.yaml").read_text())
    [generator] = kustomization["configMapGenerator"]
    assert volumes["config"]["configMap"]["name"] == generator["name"]
    assert sorted(generator["files"]) == sorted(CONFIG_FILES)
    assert sorted(kustomization["resources"]) == sorted(K8S_FILES)
    configs = {f"{serving.CONFIG_DIR}/{file}": file for file in generator["files"]}
    flags = server_flags(tf_serving["args"])
    check_server_flags(flags, configs)
    compose_flags = server_flags(compose["services"]["tf-serving"]["command"])
    assert {k: v for k, v in flags.items() if k in compose_flags} == compose_flags


def test_deployment_threads_match_its_cpu_and_the_batcher(manifests):
    tf_serving = container(manifests)
    flags = server_flags(tf_serving["args"])
    batching = parse("batching_parameters.txt", MESSAGES["BatchingParameters"]())
    cpus = int(tf_serving["resources"]["limits"]["cpu"])
    assert int(flags["tensorflow_intra_op_parallelism"]) == cpus
    assert int(flags["tensorflow_inter_op_parallelism"]) == cpus
    assert batching.num_batch_threads.value == cpus


def test_probes_ports_and_service_point_at_the_model(manifests):
    deployment, service = manifests["Deployment"], manifests["Service"]
    tf_serving = container(manifests)
    ports = {p["name"]: p["containerPort"] for p in tf_serving["ports"]}
    assert ports == {"grpc": serving.GRPC_PORT, "http": serving.REST_PORT}
    status = f"/v1/models/{contract.MODEL_NAME}"
    for probe in ("startupProbe", "livenessProbe"):
        assert tf_serving[probe]["httpGet"] == {"path": status, "port": "http"}
    # Ready only once a version is AVAILABLE: metadata is 404 until then.
    assert tf_serving["readinessProbe"]["httpGet"] == {"path": f"{status}/metadata",
                                                       "port": "http"}
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        "grpc": (serving.GRPC_PORT, "grpc"), "http": (serving.REST_PORT, "http"),
    }
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(serving.REST_PORT)
    assert annotations["prometheus.io/path"] == serving.PROMETHEUS_PATH


def test_the_server_runs_unprivileged_within_limits(manifests):
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    tf_serving = container(manifests)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    security = tf_serving["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    resources = tf_serving["resources"]
    for bound in ("requests", "limits"):
        assert set(resources[bound]) == {"cpu", "memory"}


def test_kustomize_renders_every_object_with_the_generated_config():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize serving/` not checked")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(SERVING)], capture_output=True, text=True, timeout=120
    )
    assert rendered.returncode == 0, rendered.stderr
    objects = {d["kind"]: d for d in yaml.safe_load_all(rendered.stdout)}
    assert set(objects) == {"ConfigMap", "Deployment", "Service", "PersistentVolumeClaim"}
    config_map = objects["ConfigMap"]
    assert {name: (SERVING / name).read_text() for name in CONFIG_FILES} == config_map["data"]
    volumes = objects["Deployment"]["spec"]["template"]["spec"]["volumes"]
    [config] = [v for v in volumes if v["name"] == "config"]
    # The generated name carries a content hash; the Deployment follows it.
    assert config["configMap"]["name"] == config_map["metadata"]["name"]
