"""Lookalike usernames: a name may not differ from another account's only in looks.

Two names are lookalikes when they differ only by case or by characters that look
alike: `rt2victim` and `RT2VICTIM`, or `victim` spelled with a Cyrillic i, es or te,
or with a dotless i. Unicode TR39 defines a string's *skeleton*, which lookalikes share;
ICU computes it (`SpoofChecker.getSkeleton`, through PyICU). A skeleton keeps case
(capital I looks like small l, not like small i), so a name has three, each unique in
the database (`UsernameSkeleton`): of the name as spelled (`paypaI` and `paypal`), of
it case-folded (`VICTIM` and the dotless `victim`, `rn` and `m`), and of it upper-cased
(Cyrillic small te looks like a small capital T, not like t). Two names are lookalikes
when one of these is the same.

The keys are kept by the user model's save hooks; `QuerySet.update()`, `bulk_create()`
and raw SQL bypass them, as they bypass every model hook. A skeleton depends on the
confusables data of the system's ICU, as it was when the name was saved.
"""

import functools
import hashlib
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.checks import Tags, register
from django.core.checks import Warning as CheckWarning
from django.db import IntegrityError, connections
from django.db.models import Q
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from accounts.models import UsernameSkeleton

UNIQUE_KEYS = ("skeleton", "folded_skeleton", "upper_skeleton")
# What a save's pre_save hook computed for its post_save hook.
KEYS_TO_SAVE = "_lookalike_keys_to_save"


@functools.cache
def _checker():
    """ICU's spoof checker, one per process, made on first use: ICU and its confusables
    data are 9 MB that a process which never checks a username (cleanup, the event
    worker) need not hold. Its skeleton functions are thread-safe on one checker (they
    take it as const)."""
    import icu

    return icu.SpoofChecker()


@dataclass(frozen=True)
class Keys:
    """The keys of one username, as stored in UsernameSkeleton."""

    folded: str
    skeleton: str
    folded_skeleton: str
    upper_skeleton: str

    def unique(self) -> dict[str, str]:
        """The keys no two accounts may share."""
        return {name: getattr(self, name) for name in UNIQUE_KEYS}


def keys_of(username: str) -> Keys:
    """The keys of `username`, NFKC-normalized first as Django normalizes usernames.

    Accents and other combining marks are dropped before the skeletons are taken: TR39
    keeps them (`rt2víctim` is not `rt2victim` to it), and a reader of the admin or of
    the security record tells them apart no better than a Cyrillic from a Latin i.
    """
    name = _unmarked(unicodedata.normalize("NFKC", username))
    folded = name.casefold()
    checker = _checker()
    return Keys(
        folded=folded_key(username),
        skeleton=_digest(checker.getSkeleton(0, name)),
        folded_skeleton=_digest(checker.getSkeleton(0, folded)),
        upper_skeleton=_digest(checker.getSkeleton(0, folded.upper())),
    )


def _unmarked(name: str) -> str:
    """`name` without its combining marks (NFD, then every nonspacing mark dropped)."""
    decomposed = unicodedata.normalize("NFD", name)
    return unicodedata.normalize(
        "NFC", "".join(char for char in decomposed if unicodedata.category(char) != "Mn")
    )


def folded_key(username: str) -> str:
    """The key of `username` in any case: login finds a name by it."""
    return _digest(unicodedata.normalize("NFKC", username).casefold())


def _digest(text: str) -> str:
    # A bounded, index-friendly key: a skeleton can be several times its name's length.
    return hashlib.sha256(text.encode()).hexdigest()


def holders(keys: Keys, skeletons=None):
    """The key rows that hold one of `keys`' unique keys (`skeletons`: the model's manager)."""
    skeletons = UsernameSkeleton.objects if skeletons is None else skeletons
    same = Q()
    for name, key in keys.unique().items():
        same |= Q(**{name: key})
    return skeletons.filter(same)


def lookalike_taken(username: str, *, excluding=None) -> bool:
    """Whether another account (not the user `excluding`) has this name or a lookalike."""
    User = get_user_model()
    # Exactly this name, for accounts saved around the hooks (they have no keys).
    exact = User._default_manager.filter(**{User.USERNAME_FIELD: username})
    return (
        exact.exclude(pk=excluding).exists()
        or holders(keys_of(username)).exclude(user_id=excluding).exists()
    )


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.lookalikes.before")
def refuse_lookalike(sender, instance, raw=False, update_fields=None, **kwargs):
    """A new or renamed user whose name is a lookalike of another account's is not saved.

    The unique keys decide (post_save below); this check first keeps a save outside a
    transaction (`createsuperuser`, the shell) from writing a user it cannot key.
    """
    name_field = sender.USERNAME_FIELD
    if raw or (update_fields is not None and name_field not in update_fields):
        return
    username = instance.get_username()
    if not instance._state.adding:
        saved = sender._default_manager.filter(pk=instance.pk).values_list(name_field, flat=True)
        if saved.first() == username:
            return
    keys = keys_of(username)
    if holders(keys).exclude(user_id=instance.pk).exists():
        raise IntegrityError(f"The username {username!r} is a lookalike of another account's.")
    setattr(instance, KEYS_TO_SAVE, keys)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.lookalikes.after")
def save_keys(sender, instance, created, raw=False, using=None, **kwargs):
    """Write the keys of a new or renamed user: a lookalike saved meanwhile fails here.

    Inside the saving transaction (signup, the admin's forms) the user is not saved
    either; the unique index waits for a concurrent lookalike's transaction to end.
    """
    keys = instance.__dict__.pop(KEYS_TO_SAVE, None)
    if raw or keys is None:
        return
    skeletons = UsernameSkeleton.objects.using(using)
    fields = {"folded": keys.folded, **keys.unique()}
    if created:
        skeletons.create(user_id=instance.pk, **fields)
    else:
        skeletons.update_or_create(user_id=instance.pk, defaults=fields)


def unkeyed(users):
    """Users that hold not every one of their keys: lookalikes made before the table, or
    accounts saved around the hooks (`bulk_create`, raw SQL)."""
    missing = Q(username_skeleton__isnull=True)
    for name in UNIQUE_KEYS:
        missing |= Q(**{f"username_skeleton__{name}__isnull": True})
    return users.filter(missing)


def fill(users, skeletons, *, username_field: str | None = None, batch: int = 500) -> int:
    """Give every unkeyed user the keys no other account holds, earliest id first; returns
    how many users got keys. `users` and `skeletons` are managers (migrations pass theirs).

    Walks the users in primary-key order, a batch at a time: bounded memory, and each
    query an index lookup, however many users there are.
    """
    username_field = username_field or users.model.USERNAME_FIELD
    written, last = 0, None
    while True:
        chunk = users.order_by("pk") if last is None else users.filter(pk__gt=last).order_by("pk")
        chunk = dict(chunk.values_list("pk", username_field)[:batch])
        if not chunk:
            return written
        last = max(chunk)
        # Plain values, not instances: in a keyed table most users hold every key, and skip.
        rows, done = {}, set()
        for pk, *keys in skeletons.filter(pk__in=chunk).values_list("pk", *UNIQUE_KEYS):
            if None in keys:
                rows[pk] = skeletons.model(pk=pk, **dict(zip(UNIQUE_KEYS, keys, strict=True)))
            else:
                done.add(pk)
        keyed = {pk: keys_of(name) for pk, name in chunk.items() if pk not in done}
        pairs = [key for keys in keyed.values() for key in keys.unique().items()]
        taken = _who_holds(pairs, skeletons)
        added, changed = [], []
        for pk, keys in keyed.items():
            row = rows.get(pk) or skeletons.model(pk=pk, folded=keys.folded)
            got = [
                name
                for name, key in keys.unique().items()
                # The earliest account keeps a key: this user's, unless another holds it.
                if getattr(row, name) is None and taken.setdefault((name, key), pk) == pk
            ]
            for name in got:
                setattr(row, name, getattr(keys, name))
            if pk not in rows:
                added.append(row)
            elif got:
                changed.append(row)
        skeletons.bulk_create(added)
        skeletons.bulk_update(changed, list(UNIQUE_KEYS))
        written += len(added) + len(changed)


def lookalike_groups() -> list[list]:
    """Accounts whose names are lookalikes of one another, as groups in id order.

    Only lookalikes made before this check, or saved around it, can exist: they are the
    unkeyed users and the accounts that hold their keys.
    """
    User = get_user_model()
    sharing: dict[tuple[str, str], set] = {}
    users = unkeyed(User._default_manager).values_list("pk", User.USERNAME_FIELD)
    for pk, name in users.iterator():
        for key in keys_of(name).unique().items():
            sharing.setdefault(key, set()).add(pk)
    for key, pk in _who_holds(sharing).items():
        sharing[key].add(pk)
    groups = _connected([pks for pks in sharing.values() if len(pks) > 1])
    found = User._default_manager.in_bulk({pk for group in groups for pk in group})
    return sorted(([found[pk] for pk in sorted(group)] for group in groups), key=lambda g: g[0].pk)


def _who_holds(keys, skeletons=None) -> dict[tuple[str, str], object]:
    """The user holding each of `keys` ((name, key) pairs) that is held: {(name, key): id}."""
    skeletons = UsernameSkeleton.objects if skeletons is None else skeletons
    held = {}
    for name in UNIQUE_KEYS:
        wanted = sorted({key for key_name, key in keys if key_name == name})
        for start in range(0, len(wanted), 500):  # bounded IN lists
            rows = skeletons.filter(**{f"{name}__in": wanted[start : start + 500]})
            held.update({(name, key): pk for pk, key in rows.values_list("pk", name)})
    return held


def _connected(sets: list[set]) -> list[set]:
    """Merge sets that share a member: lookalikes of lookalikes are one group."""
    groups: list[set] = []
    for members in sets:
        touching = [group for group in groups if group & members]
        merged = set(members).union(*touching)
        groups = [group for group in groups if group not in touching] + [merged]
    return groups


@register(Tags.database)
def lookalike_usernames_check(app_configs=None, databases=None, **kwargs):
    """Warn of unkeyed users; reads only the databases Django's `databases` argument names."""
    warnings = []
    for alias in databases or ():
        connection = connections[alias]
        if UsernameSkeleton._meta.db_table not in connection.introspection.table_names():
            continue  # before `migrate` made the table
        count = unkeyed(get_user_model()._default_manager.using(alias)).count()
        if count:
            warnings.append(
                CheckWarning(
                    f"Users of the database {alias!r} without a lookalike key: {count}. "
                    "Their names may look like other accounts' (made before lookalikes were "
                    "refused), or they were saved around the model.",
                    hint="`manage.py lookalike_usernames` lists the lookalikes; "
                    "`--fill` keys the users that have no lookalike.",
                    id="accounts.W001",
                )
            )
    return warnings
