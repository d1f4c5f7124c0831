"""Run by `test_v2.py` with the KServe Python SDK's own interpreter (it installs in a
virtualenv of its own: its protobuf pins clash with the service's stack). Talks V2 to the
server at argv[1] as a KServe user would, and prints what it saw as JSON.

    python kserve_client.py URL MODEL INPUTS_JSON [API_KEY]
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main(
    url: str, model: str, inputs: dict[str, list[object]], key: str | None
) -> dict[str, object]:
    def bearer(request: httpx.Request) -> httpx.Request:
        # httpx calls a function given as `auth` with each request.
        if key:
            request.headers["authorization"] = f"Bearer {key}"
        return request

    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30, auth=bearer))
    seen: dict[str, object] = {
        "live": await client.is_server_live(url),
        "ready": await client.is_server_ready(url),
        "model_ready": await client.is_model_ready(url, model),
    }
    for binary in (False, True):
        tensors = []
        for name, values in inputs.items():
            array = np.asarray(values, dtype=object if isinstance(values[0], str) else None)
            tensor = InferInput(name, [len(values)], _datatype(array))
            tensor.set_data_from_numpy(array, binary_data=binary)
            tensors.append(tensor)
        request = InferRequest(model, tensors, request_id=f"kserve-{binary}")
        response = await client.infer(url, request, model_name=model)
        outputs = {o.name: o.as_numpy().tolist() for o in response.outputs}
        seen["binary" if binary else "json"] = {"id": response.id, "outputs": outputs}
    await client.close()
    return seen


def _datatype(array: np.ndarray) -> str:
    kinds = {"f": "FP64", "i": "INT64", "b": "BOOL", "O": "BYTES"}
    return kinds[array.dtype.kind]


if __name__ == "__main__":
    url, model, inputs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    key = sys.argv[4] if len(sys.argv) > 4 else None
    print(json.dumps(asyncio.run(main(url, model, inputs, key)), default=str))
