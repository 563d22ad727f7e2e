"""One round trip through the Python client that openapi-python-client generated from
acmeport's /api/openapi.json (tests/e2e/contract.rs generates it into PYTHONPATH):
register an ACME account, create an order with it, read both back, and list the orders.
Only the generated package talks to the service; every answer is parsed into the
generated models, so a document that does not match the service fails here.

Environment: ACMEPORT_URL, ACMEPORT_USER, ACMEPORT_PASSWORD.
"""

import base64
import os
import sys

from acmeport_client import AuthenticatedClient
from acmeport_client.api.accounts import get_account, register_account
from acmeport_client.api.orders import create_order, get_order, list_orders
from acmeport_client.models import (
    AccountResponse,
    ChallengeType,
    CreatedResponse,
    CreateOrderRequest,
    OrderResponse,
    RegisterAccountRequest,
)


def check(condition, what):
    if not condition:
        sys.exit(f"round trip failed: {what}")


def main():
    credentials = f"{os.environ['ACMEPORT_USER']}:{os.environ['ACMEPORT_PASSWORD']}"
    client = AuthenticatedClient(
        base_url=os.environ["ACMEPORT_URL"],
        token=base64.b64encode(credentials.encode()).decode(),
        prefix="Basic",
        raise_on_unexpected_status=True,
    )
    with client as client:
        created = register_account.sync_detailed(
            client=client,
            body=RegisterAccountRequest(email="client@example.test", country="DE"),
        )
        check(created.status_code == 201, f"register_account answered {created.status_code}")
        check(isinstance(created.parsed, CreatedResponse), f"register_account: {created.content!r}")
        account_id = created.parsed.id

        account = get_account.sync(client=client, id=account_id)
        check(isinstance(account, AccountResponse), f"get_account: {account!r}")
        check(account.email == "client@example.test", f"account email: {account.email}")
        check(account.country == "DE", f"account country: {account.country}")

        ordered = create_order.sync_detailed(
            client=client,
            body=CreateOrderRequest(
                domains=["client.example.test"],
                account=account_id,
                type_=ChallengeType.HTTP,
            ),
        )
        check(ordered.status_code == 201, f"create_order answered {ordered.status_code}")
        check(isinstance(ordered.parsed, CreatedResponse), f"create_order: {ordered.content!r}")
        order_id = ordered.parsed.id

        order = get_order.sync(client=client, id=order_id)
        check(isinstance(order, OrderResponse), f"get_order: {order!r}")
        check(order.domains == ["client.example.test"], f"order domains: {order.domains}")
        check(order.account == account_id, f"order account: {order.account}")
        check(order.type_ == "http", f"order type: {order.type_}")

        orders = list_orders.sync(client=client, limit=10)
        check(orders is not None and str(order_id) in orders.additional_properties,
              f"list_orders: {orders!r}")
        check(orders[str(order_id)].id == order_id, "list_orders item")

    print(f"round trip ok: account {account_id}, order {order_id} ({order.status})")


if __name__ == "__main__":
    main()
