"""`flask --app app activity prune` removes records past the retention period, and only those."""

from __future__ import annotations

from flask import Flask

from tests.activity.conftest import AddActivity, ScimOrg, activity_rows


def test_prune_removes_only_records_older_than_the_retention(
    app: Flask, runner, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    add_activity(scim_org.org, minutes_ago=91 * 24 * 60)
    add_activity(None, minutes_ago=200 * 24 * 60)
    kept = [add_activity(scim_org.org, minutes_ago=89 * 24 * 60), add_activity(scim_org.org)]
    result = runner.invoke(args=["activity", "prune"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Removed 2 provisioning activity records older than 90 days."
    assert [r.id for r in activity_rows(app)] == [r.id for r in kept]


def test_prune_follows_the_configured_retention_and_the_days_option(
    app: Flask, runner, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    add_activity(scim_org.org, minutes_ago=40 * 24 * 60)
    recent = add_activity(scim_org.org, minutes_ago=2 * 24 * 60)
    app.config["ACTIVITY_RETENTION_DAYS"] = 30
    assert "Removed 1 provisioning activity record older than 30 days." in \
        runner.invoke(args=["activity", "prune"]).output
    assert [r.id for r in activity_rows(app)] == [recent.id]
    assert "Removed 1 " in runner.invoke(args=["activity", "prune", "--days", "1"]).output
    assert activity_rows(app) == []
    assert runner.invoke(args=["activity", "prune", "--days", "0"]).exit_code != 0
