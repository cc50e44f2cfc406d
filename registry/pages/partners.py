"""The partners page's code example, kept here so a test can run exactly what the page shows."""

from __future__ import annotations

#: A complete webhook receiver: verify the Standard Webhooks signature, drop duplicates, act.
VERIFY_EXAMPLE = '''\
# pip install flask standardwebhooks
import os

from flask import Flask, abort, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

app = Flask(__name__)
# The secret Daylight showed once when you created the endpoint (whsec_...).
webhook = Webhook(os.environ["DAYLIGHT_WEBHOOK_SECRET"])
seen_ids = set()  # use a database table in production


@app.post("/daylight-webhook")
def receive():
    body = request.get_data()  # verify the raw bytes, before any JSON parsing
    headers = {
        "webhook-id": request.headers.get("webhook-id", ""),
        "webhook-timestamp": request.headers.get("webhook-timestamp", ""),
        "webhook-signature": request.headers.get("webhook-signature", ""),
    }
    try:
        event = webhook.verify(body, headers)  # also refuses timestamps over 5 minutes old
    except WebhookVerificationError:
        abort(400)
    if headers["webhook-id"] in seen_ids:  # a retry of an event already handled
        return "", 204
    seen_ids.add(headers["webhook-id"])
    if event["type"] == "comment_period.opened":
        review = event["data"]["review"]
        print("Comments open on", review["technology"]["name"], "until",
              review["comment_closes_at"], "-", review["url"])
    return "", 204
'''
