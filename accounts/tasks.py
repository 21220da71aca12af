"""Celery tasks that send the outbox's session events (accounts.push).

The revoking request only writes a notice; `dispatch` runs every fraction of a second
(Celery beat), fans the notices out into the outbox, finds the receivers with an event
due, and hands each to `deliver_to`;
`heartbeat` queues the heartbeats. So delivery never slows a request, and a message
lost by the broker (Redis restarted, a worker killed) is found again on the next beat.
"""

from celery import shared_task

from accounts import delivery, push

# A delivery not started within this long is dropped by the broker: the next dispatch
# finds the receiver again, so a queue with no worker never grows without end.
DELIVERY_EXPIRES_SECONDS = 30


@shared_task(ignore_result=True)
def dispatch() -> int:
    """Fan out the waiting notices, then hand every receiver with an event due to a worker;
    returns how many receivers."""
    push.fan_out()
    due = delivery.due_receivers()
    for receiver_id in due:
        deliver_to.apply_async((receiver_id,), expires=DELIVERY_EXPIRES_SECONDS)
    return len(due)


@shared_task(ignore_result=True)
def deliver_to(receiver_id: int) -> int:
    """Send one receiver's due events in order (one worker at a time holds it)."""
    return delivery.deliver(receiver_id)


@shared_task(ignore_result=True)
def heartbeat() -> int:
    """Queue a heartbeat behind every empty queue; the next dispatch sends them."""
    return push.queue_heartbeats()
