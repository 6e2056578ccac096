"""The console's API against its own OpenAPI document, by schemathesis (bounded examples per operation).

Every operation is called with an admin's bearer token on a site with a
published statement, subscribers and a sent edition: no answer is a 5xx,
and every answer matches the document (status, content type, schema).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from test_email_delivery import add_subscribers

from syndicate.console.accounts import Accounts
from syndicate.pipeline import tick
from syndicate.web import create_app
from syndicate.web.admin import openapi


@pytest.fixture
def admin_token(site, make_app):
    app = make_app(site)
    tick(app)
    add_subscribers(app, [f"reader{i}@example.org" for i in range(3)])
    site.statement("news.md", "News", "2026-11-26T14:00:00+03:00")
    tick(app)
    _, token = Accounts(app.db, app.config.admin, app.clock).create_token("schemathesis", "admin")
    return app, token


def test_every_operation_answers_as_its_document_says(admin_token):
    app, token = admin_token
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", create_app(app))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(openapi.PATHS), [o.label for o in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"})

        answers()
