"""The Provisioning activity sub-page: newest first, filters, expandable rows, HTMX paging."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from portal.services.provisioning_activity import PAGE_SIZE
from tests.activity.conftest import AddActivity, ScimOrg, backdate_token

NEW_ENDPOINTS = ["/settings/iam/scim/activity", "/settings/iam/scim/health",
                 "/settings/iam/scim/report", "/settings/iam/scim/report.json"]


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-activity-id="(\d+)"', html)]


@pytest.mark.parametrize("path", NEW_ENDPOINTS)
def test_member_without_iam_permission_gets_403_on_every_new_endpoint(
    member_client: FlaskClient, path: str
) -> None:
    page = member_client.get(path)
    fragment = member_client.get(path, headers={"HX-Request": "true"})
    assert page.status_code == fragment.status_code == 403
    assert b"403 Forbidden" in page.data and b"<html" not in fragment.data


def test_activity_lists_newest_first_with_expandable_details(
    admin_client: FlaskClient, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    old = add_activity(scim_org.org, minutes_ago=30, effect="created user alice@acme.example",
                       method="POST", request_body={"userName": "alice@acme.example"})
    new = add_activity(scim_org.org, minutes_ago=1, status=409, scim_type="uniqueness",
                       detail="userName is taken", method="POST")
    response = admin_client.get("/settings/iam/scim/activity")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert _ids(html) == [new.id, old.id]
    assert html.count('<details class="row-toggle">') == 2
    # A real table: the six column headers, then one row group per request.
    head = html.split('<table class="table activity-table">')[1].split("</thead>")[0]
    assert re.findall(r'<th scope="col">([^<]+)</th>', head) == [
        "Time", "Status", "Method", "Path", "Result", "Client"]
    assert html.count('<tr class="activity-detail-row">') == 2
    assert "created user alice@acme.example" in html
    assert "scimType <code>uniqueness</code>" in html and "userName is taken" in html
    assert '"userName": "alice@acme.example"' in html  # the stored body
    assert 'aria-current="page">Provisioning activity</a>' in html


def test_activity_shows_only_the_current_organisation(
    admin_client: FlaskClient, scim_org: ScimOrg, add_activity: AddActivity, factory
) -> None:
    other = factory.org("Globex")
    mine = add_activity(scim_org.org)
    add_activity(other)
    add_activity(None)
    html = admin_client.get("/settings/iam/scim/activity").get_data(as_text=True)
    assert _ids(html) == [mine.id]


def test_errors_filter_shows_only_failed_requests(
    admin_client: FlaskClient, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    add_activity(scim_org.org, status=200)
    bad = add_activity(scim_org.org, status=401)
    html = admin_client.get("/settings/iam/scim/activity?status=errors").get_data(as_text=True)
    assert _ids(html) == [bad.id]
    assert 'value="errors" checked' in html


def test_resource_and_text_filters(admin_client: FlaskClient, scim_org: ScimOrg,
                                   add_activity: AddActivity) -> None:
    user = add_activity(scim_org.org, resource_type="User", effect="deactivated user bob@x")
    group = add_activity(scim_org.org, resource_type="Group", path="/Groups/g1",
                         effect="removed 2 members from Engineering")
    add_activity(scim_org.org, resource_type="ServiceProviderConfig",
                 path="/ServiceProviderConfig")
    get = admin_client.get
    assert _ids(get("/settings/iam/scim/activity?resource=Group").get_data(as_text=True)) == \
        [group.id]
    assert _ids(get("/settings/iam/scim/activity?q=BOB@").get_data(as_text=True)) == [user.id]
    assert _ids(get("/settings/iam/scim/activity?q=engineering&resource=User")
                .get_data(as_text=True)) == []
    assert len(_ids(get("/settings/iam/scim/activity?resource=nonsense")
                    .get_data(as_text=True))) == 3  # an unknown value is ignored


def test_text_filter_treats_wildcards_literally(admin_client: FlaskClient, scim_org: ScimOrg,
                                                add_activity: AddActivity) -> None:
    add_activity(scim_org.org, effect="plain")
    hit = add_activity(scim_org.org, effect="100% done")
    html = admin_client.get("/settings/iam/scim/activity?q=%25").get_data(as_text=True)
    assert _ids(html) == [hit.id]


def test_htmx_paging_returns_the_next_rows_as_the_same_partial(
    admin_client: FlaskClient, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    rows = [add_activity(scim_org.org, minutes_ago=200 - i, status=500 if i % 2 else 200)
            for i in range(PAGE_SIZE * 2 + 5)]
    newest_first = [r.id for r in reversed(rows)]
    html = admin_client.get("/settings/iam/scim/activity").get_data(as_text=True)
    assert _ids(html) == newest_first[:PAGE_SIZE]
    more = re.search(r'hx-get="([^"]+)" hx-target="closest tbody"', html)
    assert more
    fragment = admin_client.get(more.group(1).replace("&amp;", "&"),
                                headers={"HX-Request": "true"})
    assert "HX-Request" in fragment.headers["Vary"]
    part = fragment.get_data(as_text=True)
    assert "<html" not in part and 'class="filters"' not in part
    assert _ids(part) == newest_first[PAGE_SIZE:PAGE_SIZE * 2]
    # Without JavaScript the same link is a page of older records.
    page = admin_client.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert _ids(page) == newest_first[PAGE_SIZE:PAGE_SIZE * 2] and "<html" in page
    last = re.search(r'hx-get="([^"]+)" hx-target="closest tbody"', part)
    assert last
    tail = admin_client.get(last.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert _ids(tail.get_data(as_text=True)) == newest_first[PAGE_SIZE * 2:]
    assert b"Load more" not in tail.data


def test_paging_keeps_the_filter(admin_client: FlaskClient, scim_org: ScimOrg,
                                 add_activity: AddActivity) -> None:
    for i in range(PAGE_SIZE + 3):
        add_activity(scim_org.org, minutes_ago=100 - i, status=401)
        add_activity(scim_org.org, minutes_ago=100 - i, status=200)
    html = admin_client.get("/settings/iam/scim/activity?status=errors").get_data(as_text=True)
    more = re.search(r'hx-get="([^"]+)"', html.split('class="load-more"')[1])
    assert more and "status=errors" in more.group(1)
    part = admin_client.get(more.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert len(_ids(part.get_data(as_text=True))) == 3


def test_empty_log_says_so(admin_client: FlaskClient) -> None:
    html = admin_client.get("/settings/iam/scim/activity").get_data(as_text=True)
    assert "No SCIM requests have been received yet." in html
    assert "No requests received yet" in html  # the health line


def test_configuration_screen_links_to_activity_and_report(admin_client: FlaskClient) -> None:
    html = admin_client.get("/settings/iam/scim").get_data(as_text=True)
    assert 'href="/settings/iam/scim/activity"' in html
    assert 'href="/settings/iam/scim/report"' in html
    assert 'id="scim-health"' in html


def test_health_partial_is_the_badge_alone(admin_client: FlaskClient, scim_org: ScimOrg,
                                           add_activity: AddActivity, app) -> None:
    backdate_token(app, scim_org.org, days=1)
    add_activity(scim_org.org, minutes_ago=3)
    response = admin_client.get("/settings/iam/scim/health", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("<div class=\"health\"")
    assert re.search(r'<span class="badge badge-ok">Healthy</span>\s*'
                     r'<span class="health-line">last request 3 min ago \(Okta SCIM Client 1\.0\.0\)',
                     html)
    assert "Healthy — " not in html  # the badge says the state; the line does not repeat it


def test_status_for_auditors_reports_the_last_request_with_its_result(
    admin_client: FlaskClient, scim_org: ScimOrg, add_activity: AddActivity, app
) -> None:
    backdate_token(app, scim_org.org, days=1)
    add_activity(scim_org.org, minutes_ago=9)
    add_activity(scim_org.org, minutes_ago=2, status=401, client="Entra ID provisioning")
    html = admin_client.get("/settings/iam/scim").get_data(as_text=True)
    status = html.split('id="scim-status"')[1].split("</section>")[0]
    assert "Failed: invalid token (HTTP 401)" in status
    assert "(Entra ID provisioning)" in status
    assert 'id="scim-health"' in status
    assert "Download SCIM status report" in status


def test_activity_page_of_an_unreleased_organisation_shows_only_the_rollout_line(
    client: FlaskClient, factory, add_activity: AddActivity
) -> None:
    org = factory.org("Globex", released=False)
    factory.it_admin(org, "gina@globex.example")
    add_activity(org, status=403)
    from tests.conftest import login

    login(client, "gina@globex.example")
    html = client.get("/settings/iam/scim/activity").get_data(as_text=True)
    assert 'data-testid="rollout-pending"' in html
    assert "data-activity-id" not in html and "Provisioning activity</a>" not in html
