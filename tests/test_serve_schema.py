"""Property-based: requests generated from the service's own OpenAPI schema never get a 5xx.

Each answer is also checked against the schema (status documented, body and
content type as declared, auth enforced, broken input rejected).

schemathesis walks every operation with schema-conforming and broken inputs
(headers, path ids, query values, bodies in each declared media type), with
and without a valid token; a fixed seed and a small example budget keep the
run bounded and repeatable.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from servekit import FIXTURES, auth
from servekit import settings as serve_settings

from scrubber.serve import create_app

schemathesis.serializer.alias("application/edi-x12", "application/octet-stream")


@pytest.fixture
def api_schema(tmp_path):
    app = create_app(serve_settings(tmp_path, max_body=64 * 1024))
    app.state.intake.warm()  # what the lifespan does before a real server takes traffic
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case):
    headers = auth() if case.operation.path not in ("/healthz", "/readyz") else {}
    # every check but "schema-valid data is accepted": a body the schema allows (bytes) is
    # answered 400 when it is not an 837, by design
    response = case.call_and_validate(headers={**(case.headers or {}), **headers},
                                      excluded_checks=[positive_data_acceptance])
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    if response.status_code >= 400:
        assert "Traceback" not in response.text
        assert set(response.json()) >= {"error", "message"} or "status" in response.json()


def test_a_real_file_through_the_schema_client(api_schema):
    """The generated client also carries a real 837: the service answers it as documented."""
    operation = api_schema["/v1/validate"]["POST"]
    case = operation.Case(body=(FIXTURES / "837p-single.x12").read_bytes(),
                          media_type="application/edi-x12")
    response = case.call(headers=auth())
    assert response.status_code == 200
    assert response.json()["files"][0]["summary"]["claims"] == 1
