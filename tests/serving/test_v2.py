"""The Open Inference Protocol (KServe V2) against a real server, with tritonclient as its
users run it: JSON and binary tensors, one `[rows, features]` tensor or one per feature,
the scores equal to the native route's and to the reference libraries', the decisions
logged, errors as `{"error": ...}` with 400 or 404."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
import tritonclient.http as triton
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from tritonclient.utils import InferenceServerException

from ferroscore.models.registry import DEMO_MODEL

from support import FraudModels, ServerProcess, fraud_server, wait_logged

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(
    module_database: str, fraud: FraudModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("v2")
    with fraud_server(module_database, fraud, directory, FERROSCORE_DECISION_FLUSH_MS="20") as srv:
        yield srv


class Bearer(triton.InferenceServerClientPlugin):  # type: ignore[misc]
    """Sends the server's test key with every request, as tritonclient's plugins do."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def __call__(self, request: Any) -> None:
        request.headers.update(self._headers)


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> triton.InferenceServerClient:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    client.register_plugin(Bearer(server.headers))
    return client


def test_health_and_metadata(server: ServerProcess, client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(DEMO_MODEL)
    assert client.is_model_ready(DEMO_MODEL, "1")
    assert not client.is_model_ready(DEMO_MODEL, "7")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    # In model column order, as a `[rows, features]` tensor reads them.
    demo = [i["name"] for i in client.get_model_metadata(DEMO_MODEL)["inputs"]]
    assert demo[:3] == ["mean_radius", "mean_texture", "mean_perimeter"]
    meta = client.get_model_metadata("card-fraud")
    assert meta["versions"] == ["1"]
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
        "amount": "FP64", "age": "INT64", "merchant": "BYTES", "card_present": "BOOL"}  # fmt: skip
    assert [o["name"] for o in meta["outputs"]] == ["score", "decision"]
    status, config = server.request("GET", "/v2/models/card-fraud/config")
    assert (status, config["max_batch_size"]) == (200, 10_000)
    status, missing = server.request("GET", "/v2/models/nope")
    assert (status, list(missing)) == (404, ["error"])


def native_scores(server: ServerProcess, model: str, rows: list[dict[str, Any]]) -> list[Any]:
    body = json.dumps({"rows": [{"features": r} for r in rows]}).encode()
    status, answer = server.request("POST", f"/v1/models/{model}/score", body)
    assert status == 200, answer
    return answer["scores"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("binary", "dtype"), [(False, "FP64"), (True, "FP64"), (True, "FP32")])
def test_one_matrix_tensor_scores_as_the_native_route(
    server: ServerProcess, client: triton.InferenceServerClient, module_database: str,
    demo_model_bytes: bytes, binary: bool, dtype: str,
) -> None:  # fmt: skip
    data = load_breast_cancer()
    x = data.data[:40].astype(np.float32 if dtype == "FP32" else np.float64)
    tensor = triton.InferInput("input__0", list(x.shape), dtype)
    tensor.set_data_from_numpy(x, binary_data=binary)
    result = client.infer(DEMO_MODEL, [tensor], request_id="my-batch-7")
    got = result.as_numpy("score")
    assert got.shape == (40,)
    names = [n.replace(" ", "_") for n in data.feature_names]
    rows = [dict(zip(names, map(float, r), strict=True)) for r in x]
    np.testing.assert_allclose(got, native_scores(server, DEMO_MODEL, rows), rtol=0, atol=0)
    response = result.get_response()
    assert (response["id"], response["model_version"]) == ("my-batch-7", "1")
    # Logged under the service's own request id, one row per record.
    logged = wait_logged(module_database, response["parameters"]["request_id"], 40)
    assert len(logged) == 40
    booster = xgb.Booster()
    booster.load_model(bytearray(demo_model_bytes))
    np.testing.assert_allclose(got, booster.inplace_predict(x), rtol=0, atol=1e-6)


def test_one_tensor_per_feature_with_strings_booleans_and_missing_values(
    server: ServerProcess, client: triton.InferenceServerClient, fraud: FraudModels
) -> None:
    frame = fraud.frame().iloc[:60]
    amount = frame["amount"].to_numpy(np.float64)  # NaN: missing, allowed by the schema
    inputs = []
    for name, values, dtype in [
        ("amount", amount, "FP64"),
        ("age", frame["age"].to_numpy(np.int64), "INT64"),
        ("merchant", frame["merchant"].astype(str).to_numpy(object), "BYTES"),
        ("card_present", frame["card_present"].to_numpy(bool), "BOOL"),
    ]:
        tensor = triton.InferInput(name, [len(frame), 1], dtype)
        tensor.set_data_from_numpy(values.reshape(-1, 1), binary_data=True)
        inputs.append(tensor)
    result = client.infer("card-fraud", inputs)
    got = result.as_numpy("score")
    want = lgb.Booster(model_file=str(fraud.lightgbm)).predict(frame[fraud.features])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    decisions = [d.decode() if isinstance(d, bytes) else d for d in result.as_numpy("decision")]
    assert decisions == ["decline" if s >= 0.5 else "approve" for s in got]


def test_json_tensors_by_hand_and_errors_as_the_protocol_says(server: ServerProcess) -> None:
    def infer(body: dict[str, Any], model: str = "card-fraud") -> tuple[int, dict[str, Any]]:
        return server.request("POST", f"/v2/models/{model}/infer", json.dumps(body).encode())

    columns = [
        {"name": "amount", "shape": [2], "datatype": "FP64", "data": [120.0, None]},
        {"name": "age", "shape": [2], "datatype": "INT64", "data": [40, 70]},
        {"name": "merchant", "shape": [2], "datatype": "BYTES", "data": ["travel", "fuel"]},
        {"name": "card_present", "shape": [2], "datatype": "BOOL", "data": [False, True]},
    ]
    status, answer = infer({"id": "x1", "inputs": columns, "outputs": [{"name": "decision"}]})
    assert status == 200, answer
    assert [o["name"] for o in answer["outputs"]] == ["decision"]
    assert answer["id"] == "x1"
    bad_age = [*columns[:1], {**columns[1], "data": [40, -3]}, *columns[2:]]
    cases: list[tuple[dict[str, Any], str, int, str]] = [
        ({"inputs": bad_age}, "card-fraud", 400, "input 'age', row 1: must be >= "),
        ({"inputs": columns[:3]}, "card-fraud", 400,
         "input 'card_present', row 0: required feature"),
        ({"inputs": [{**columns[0], "datatype": "FP8"}]}, "card-fraud", 400, "not supported"),
        # Found by schemathesis: JSON where a string or an object belongs, not a 500.
        ({"inputs": [{**columns[0], "datatype": {"FP64": 1}}]}, "card-fraud", 400,
         "not supported"),
        ({"inputs": [{**columns[0], "parameters": [1]}]}, "card-fraud", 400,
         '"parameters" must be an object'),
        ({"inputs": [{**columns[0], "shape": [3]}]}, "card-fraud", 400, "2 values for shape [3]"),
        ({"inputs": []}, "card-fraud", 400, "non-empty list"),
        ({"inputs": columns, "outputs": [{"name": "proba"}]}, "card-fraud", 400,
         "unknown output 'proba'"),
        ({"inputs": columns}, "nope", 404, "no active model named 'nope'"),
    ]  # fmt: skip
    for body, model, want_status, says in cases:
        status, refused = infer(body, model)
        assert (status, list(refused)) == (want_status, ["error"]), refused
        assert says in refused["error"], refused
    status, refused = server.request("POST", "/v2/models/card-fraud/infer", b"{oops")
    assert status == 400
    assert refused["error"].startswith("malformed JSON")
    status, refused = server.request(
        "POST", "/v2/models/card-fraud/versions/2/infer", json.dumps({"inputs": columns}).encode()
    )
    assert (status, refused["error"]) == (404, "version 2 of 'card-fraud' is not served; "
                                                 "version 1 is")  # fmt: skip


def test_tritonclient_reports_our_error_message(client: triton.InferenceServerClient) -> None:
    tensor = triton.InferInput("amount", [1], "FP64")
    tensor.set_data_from_numpy(np.array([-5.0]), binary_data=True)
    with pytest.raises(InferenceServerException, match="input 'amount', row 0"):
        client.infer("card-fraud", [tensor])


KSERVE_VENV = Path(__file__).resolve().parents[2] / ".venv-kserve"


def kserve_python() -> Path | None:
    """The KServe SDK in a virtualenv of its own (built once, beside .venv); None when it
    does not install here."""
    python = KSERVE_VENV / "bin" / "python"
    if not (KSERVE_VENV / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(KSERVE_VENV)], check=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "kserve"],
                              capture_output=True, text=True, timeout=900)  # fmt: skip
        if done.returncode != 0:
            return None
        (KSERVE_VENV / ".installed").touch()
    return python


def test_the_kserve_sdk_in_its_v2_mode(server: ServerProcess, fraud: FraudModels) -> None:
    python = kserve_python()
    if python is None:
        pytest.skip("the KServe SDK does not install here (pip install kserve failed)")
    frame = fraud.frame().dropna().iloc[:8]
    inputs = {"amount": frame["amount"].tolist(), "age": frame["age"].tolist(),
              "merchant": frame["merchant"].astype(str).tolist(),
              "card_present": frame["card_present"].tolist()}  # fmt: skip
    done = subprocess.run(
        [str(python), str(Path(__file__).with_name("kserve_client.py")), server.url,
         "card-fraud", json.dumps(inputs), server.key or ""],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert (seen["live"], seen["ready"], seen["model_ready"]) == (True, True, True)
    want = lgb.Booster(model_file=str(fraud.lightgbm)).predict(frame[fraud.features])
    for form in ("json", "binary"):
        assert seen[form]["id"] == f"kserve-{form == 'binary'}"
        np.testing.assert_allclose(seen[form]["outputs"]["score"], want, rtol=0, atol=1e-6)
        decisions = seen[form]["outputs"]["decision"]
        assert [d if isinstance(d, str) else str(d) for d in decisions] == [
            "decline" if s >= 0.5 else "approve" for s in want]  # fmt: skip


def test_the_openapi_document_follows_activations(
    server: ServerProcess, fraud: FraudModels
) -> None:
    status, doc = server.request("GET", "/openapi.json")
    assert status == 200
    schemas = doc["components"]["schemas"]
    assert {"ScoreRequest_card-fraud", f"ScoreRequest_{DEMO_MODEL}"} <= set(schemas)
    files, fields = {"model": fraud.lightgbm.read_bytes()}, {"schema": fraud.schema.read_text()}
    status, pushed = server.upload("/v1/models/late-model/versions", files, fields)
    assert status == 201, pushed
    assert server.request("POST", "/v1/models/late-model/versions/1/activate")[0] == 200
    deadline = time.monotonic() + 10
    while "ScoreRequest_late-model" not in doc["components"]["schemas"]:
        assert time.monotonic() < deadline, "the document never showed the new model"
        time.sleep(0.1)
        doc = server.request("GET", "/openapi.json")[1]
    # /v1 errors are problem details.
    request = urllib.request.Request(server.url + "/v1/models/nope/score", b"{}",
                                     server.headers, method="POST")  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.headers["content-type"] == "application/problem+json"
    problem = json.loads(refused.value.read())
    assert (problem["type"], problem["status"], problem["title"]) == (
        "urn:ferroscore:problem:model_not_found", 404, "Not Found")  # fmt: skip
