"""Create the failed-run automation of ``automation-failed-run.yaml`` with a notification block.

With ``PREFECT_API_URL`` pointing at the server::

    .venv/bin/python deployments/alerts.py --webhook-url URL   # saves a "Custom Webhook" block named pvdoi-alerts
    .venv/bin/python deployments/alerts.py --block slack-webhook/pvdoi-slack   # any notification block, type/name

The webhook receives JSON ``{"subject": ..., "body": ...}``; the body is the failed run's state message,
which names the failed datasets. Running it again replaces the automation (same name).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from uuid import UUID

import yaml

AUTOMATION_YAML = Path(__file__).resolve().parent / "automation-failed-run.yaml"
WEBHOOK_BLOCK = "pvdoi-alerts"


def notification_block(*, webhook_url: str | None = None, block: str | None = None) -> UUID:
    """The id of the notification block: a saved Custom Webhook for ``webhook_url``, or the ``type/name`` block."""
    from prefect.blocks.core import Block
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    if webhook_url:
        hook = CustomWebhookNotificationBlock(name=WEBHOOK_BLOCK, url=webhook_url,
                                              json_data={"subject": "{{subject}}", "body": "{{body}}"})
        return hook.save(WEBHOOK_BLOCK, overwrite=True)
    loaded = Block.load(block)
    if "notify" not in loaded.get_block_capabilities():
        raise SystemExit(f"block {block!r} cannot send notifications; use a notification block (slack-webhook/..., "
                         "custom-webhook/..., ms-teams-webhook/...)")
    return loaded._block_document_id


def create_automation(block_id: UUID, path: Path = AUTOMATION_YAML) -> UUID:
    """Create (or replace) the automation of ``path``, its notifications sent through ``block_id``."""
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    for action in spec["actions"]:
        if action["type"] == "send-notification":
            action["block_document_id"] = str(block_id)
    automation = AutomationCore.model_validate(spec)
    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(automation.name):
            client.delete_automation(old.id)
        return client.create_automation(automation)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="deployments/alerts.py", description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--webhook-url", help="URL that receives a JSON POST for each failed run")
    target.add_argument("--block", help="an existing notification block, as type-slug/name")
    args = parser.parse_args(argv)
    automation_id = create_automation(notification_block(webhook_url=args.webhook_url, block=args.block))
    print(f"created automation {automation_id} from {AUTOMATION_YAML.name}")


if __name__ == "__main__":
    main()
