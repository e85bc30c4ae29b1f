"""``patron campaigns``: plan, prepare (control group, arms, contact policy), send, record responses, report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from patron.cli.shared import console, open_store, print_rows, progress_bar, reports_errors

campaigns_app = typer.Typer(
    help="Campaigns as experiments: target, control group, policy, send, measure.", no_args_is_help=True
)


@campaigns_app.command("create")
@reports_errors
def create(
    key: str,
    name: str,
    *,
    rule: Annotated[str, typer.Option(help="Who to target (the segment rule language).")],
    subject: Annotated[str, typer.Option(help="Subject template, e.g. 'Hello {{ first_name }}'.")],
    body: Annotated[
        str, typer.Option(help="Body template: name, first_name, last_purchase, manager_signature, offer, arm.")
    ],
    control_share: float = 0.1,
    arms: Annotated[str, typer.Option(help="Comma-separated arm names for an A/B/n test.")] = "A",
    suppress_tiers: Annotated[str, typer.Option(help="Comma-separated tiers not to contact, e.g. C.")] = "",
    offer: Annotated[str | None, typer.Option(help="One offer for everyone.")] = None,
    best_offer: Annotated[bool, typer.Option(help="Each customer's own next-best offer, chosen at prepare.")] = False,
    uplift_model: Annotated[
        str | None, typer.Option(help="Contact only those whose uplift × offer margin exceeds the contact cost.")
    ] = None,
    contact_cost: Annotated[float | None, typer.Option(help="Cost of one contact (uplift targeting).")] = None,
) -> None:
    """Plan a campaign (checked now: rule, templates, offer). Templates also see ``recommendations`` (the customer's
    top three products: name, price, sku)."""
    from patron.engage.campaigns import create_campaign  # noqa: PLC0415

    create_campaign(
        open_store(), key, name, rule=rule, subject=subject, body=body, control_share=control_share,
        arms=tuple(a.strip() for a in arms.split(",") if a.strip()),
        suppress_tiers=tuple(t.strip() for t in suppress_tiers.split(",") if t.strip()), offer=offer,
        best_offer=best_offer, uplift_model=uplift_model, contact_cost=contact_cost,
    )  # fmt: skip
    console.print(f"campaign {key!r} planned; next: patron campaigns prepare {key}")


@campaigns_app.command("offer")
@reports_errors
def offer(
    name: str,
    margin: float,
    description: str | None = None,
    eligibility: str | None = None,
    channel: Annotated[str | None, typer.Option(help="Only on this channel (default: any).")] = None,
) -> None:
    """Add an offer (its margin per acceptance must not be negative); run decide-offers afterwards."""
    from patron.engage.offers import create_offer  # noqa: PLC0415

    engine = open_store()
    create_offer(engine, name, margin=margin, description=description, eligibility=eligibility, channel=channel)
    console.print(f"offer {name!r} added; `patron campaigns decide-offers` makes real-time lookups fast again")


@campaigns_app.command("offers")
@reports_errors
def offers() -> None:
    """The offers, newest first, with margin, channel and who is eligible."""
    from patron.cif.money import format_money  # noqa: PLC0415
    from patron.engage.offers import list_offers  # noqa: PLC0415

    print_rows(
        list_offers(open_store()), ("offer", "margin", "channel", "eligible", "valid"),
        lambda row: (
            row["name"], format_money(row["margin_minor"], row["currency"]), row["channel"] or "any",
            row["eligibility"] or "everyone", f"{row['valid_from'] or '…'} to {row['valid_to'] or '…'}",
        ),
        empty="No offers yet: add one with `patron campaigns offer NAME MARGIN --eligibility RULE`.",
    )  # fmt: skip


@campaigns_app.command("prepare")
@reports_errors
def prepare(key: str) -> None:
    """Select the target, draw the control group and arms, apply the contact policy."""
    from patron.engage.campaigns import prepare_campaign  # noqa: PLC0415

    result = prepare_campaign(open_store(), key)
    console.print(f"{result.members:,} members: {result.control:,} in the control group, {result.pending:,} to contact")
    for reason, count in sorted(result.blocked.items(), key=lambda item: -item[1]):
        console.print(f"  not contacted: {count:,} — {reason}")
    if result.expected_incremental is not None and result.everyone_incremental is not None:
        console.print(
            f"  expected incremental margin of these contacts: {result.expected_incremental:,.2f} "
            f"(contacting the whole segment: {result.everyone_incremental:,.2f}; {result.left_out:,} left out "
            "whose uplift does not pay for the contact)"
        )
    console.print(f"next: patron campaigns preview {key}, then patron campaigns send {key}")


@campaigns_app.command("preview")
@reports_errors
def preview(key: str, sample: int = 3) -> None:
    """The messages of a prepared campaign as its first customers would get them (nothing is sent)."""
    from patron.engage.sending import preview_messages  # noqa: PLC0415

    for message in preview_messages(open_store(), key, sample=sample):
        offer = f"offer {message.offer} ({message.offer_reason})" if message.offer else "no offer"
        console.print(f"[bold]customer {message.customer_id}[/bold] — {offer}")
        console.print(f"  subject: {message.subject}")
        console.print("  " + message.body.replace("\n", "\n  "))


@campaigns_app.command("send")
@reports_errors
def send(
    key: str,
    limit: int | None = None,
    letters: Annotated[Path | None, typer.Option(help="Direct mail: write the letter batch (PDF + CSV) here.")] = None,
) -> None:
    """Send the pending contacts on the campaign's channel: e-mails over SMTP (PATRON_SMTP_HOST, PATRON_SMTP_PORT,
    PATRON_SMTP_SENDER), text messages through the SMS gateway's webhook (PATRON_SMS_WEBHOOK_URL), or write a mail
    campaign's letters with --letters; resumable either way."""
    from patron.engage.campaigns import plan_of  # noqa: PLC0415
    from patron.engage.channels import configured_channel  # noqa: PLC0415
    from patron.engage.letters import LetterBatch  # noqa: PLC0415
    from patron.engage.sending import send_campaign  # noqa: PLC0415

    store = open_store()
    if letters is not None:
        batch = LetterBatch(letters)
        result = send_campaign(store, key, batch, limit=limit)
        console.print(
            f"wrote {result.sent:,} letters to {letters} (print {batch.close()}); {result.remaining:,} pending"
        )
        return
    result = send_campaign(store, key, configured_channel(plan_of(store, key).channel or "email"), limit=limit)
    console.print(f"sent {result.sent:,}; {result.remaining:,} still pending")
    if result.error:
        console.print(f"[red]the channel failed[/red]: {result.error}; run the same command again to carry on")


@campaigns_app.command("status")
@reports_errors
def status(key: str) -> None:
    """Live counts: pending, sending, sent, blocked, control."""
    from patron.engage.sending import contact_statuses  # noqa: PLC0415

    for state, count in sorted(contact_statuses(open_store(), key).items()):
        console.print(f"  {state}: {count:,}")


@campaigns_app.command("respond")
@reports_errors
def respond(key: str, customer: str, kind: str, value: float | None = None) -> None:
    """Record a response (opened, clicked, bought …)."""
    from patron.cif.view import resolve_customer  # noqa: PLC0415
    from patron.engage.sending import record_response  # noqa: PLC0415

    engine = open_store()
    record_response(engine, key, resolve_customer(engine, customer), kind, value=value)
    console.print("response recorded")


@campaigns_app.command("consent")
@reports_errors
def consent(customer: str, channel: str, status: str = "granted", purpose: str = "marketing") -> None:
    """Record consent (or its withdrawal) for a channel and purpose."""
    from patron.cif.view import resolve_customer  # noqa: PLC0415
    from patron.engage.consent import record_consent  # noqa: PLC0415

    engine = open_store()
    record_consent(engine, resolve_customer(engine, customer), channel=channel, purpose=purpose, status=status)
    console.print(f"{channel} {purpose}: {status}")


@campaigns_app.command("prefer")
@reports_errors
def prefer(
    customer: str,
    channel: str,
    preferred: Annotated[bool, typer.Option(help="The channel the customer prefers.")] = False,
    max_per_month: Annotated[int | None, typer.Option(help="At most this many contacts a month on it.")] = None,
) -> None:
    """Record how the customer wants to hear from us on a channel (campaigns and the next-best offer respect it)."""
    from patron.cif.view import resolve_customer  # noqa: PLC0415
    from patron.engage.consent import set_contact_preference  # noqa: PLC0415

    engine = open_store()
    set_contact_preference(engine, resolve_customer(engine, customer), channel=channel, preferred=preferred,
                           max_per_month=max_per_month)  # fmt: skip
    cap = "no cap of their own" if max_per_month is None else f"at most {max_per_month} a month"
    console.print(f"{channel}: {'preferred, ' if preferred else ''}{cap}")


@campaigns_app.command("nbo")
@reports_errors
def nbo(customer: str, channel: str = "email") -> None:
    """The next-best offer for a customer, with its expected value and why."""
    from patron.cif.view import resolve_customer  # noqa: PLC0415
    from patron.engage.offers import next_best_offer  # noqa: PLC0415

    engine = open_store()
    choice = next_best_offer(engine, resolve_customer(engine, customer), channel=channel)
    console.print(choice.reason if choice.offer else f"no offer: {choice.reason}")  # the reason names the offer


@campaigns_app.command("decide-offers")
@reports_errors
def decide_offers_command() -> None:
    """Work out every customer's eligible offers now, for the real-time next-best-offer lookup (the score and
    daily jobs do this too)."""
    from patron.engage.offers import decide_offers  # noqa: PLC0415

    engine = open_store()
    with progress_bar() as bar:
        decided = decide_offers(engine, progress=bar("deciding offers"))
    console.print(f"offers decided for {decided:,} customers")


@campaigns_app.command("call-list")
@reports_errors
def call_list_command(
    rule: Annotated[str, typer.Argument(help='Who to call, e.g. tier == "A" and p_alive < 0.5')],
    html: Annotated[Path | None, typer.Option(help="Write the one-page briefings here.")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write the list as CSV here.")] = None,
    limit: int = 50,
) -> None:
    """A call list for account managers with a one-page briefing per customer."""
    from patron.engage.call_list import briefings_csv, briefings_html, call_list  # noqa: PLC0415

    briefings = call_list(open_store(), rule, limit=limit)
    console.print(f"{len(briefings)} customers to call")
    for briefing in briefings[:10]:
        console.print(f"  {briefing.name}: {briefing.questions[0]}")
    if html is not None:
        html.write_text(briefings_html(briefings, f"Call list: {rule}"), encoding="utf-8")
        console.print(f"wrote the briefings to {html}")
    if csv_path is not None:
        csv_path.write_text(briefings_csv(briefings), encoding="utf-8")
        console.print(f"wrote the list to {csv_path}")


@campaigns_app.command("report")
@reports_errors
def report(key: str, kind: str, contact_cost: float = 0.0, margin_rate: float = 0.3) -> None:
    """Response rate per arm, uplift against the control with a 95 % interval, p-value, value per member, ROI."""
    from patron.engage.report import campaign_report, offer_results  # noqa: PLC0415

    result = campaign_report(open_store(), key, kind, contact_cost=contact_cost, margin_rate=margin_rate)
    console.print(f"{result.campaign}: {result.kind}")
    for arm in result.arms:
        label = arm.arm + (" (control)" if arm.is_control else "")
        line = f"  {label}: {arm.responders:,} of {arm.members:,} = {arm.rate:.4f}"
        if arm.uplift is not None and arm.ci_low is not None and arm.ci_high is not None:
            line += f"; uplift {arm.uplift:+.4f} (95 % {arm.ci_low:+.4f} … {arm.ci_high:+.4f}, p = {arm.p_value:.2g})"
        line += f"; value per member {arm.value_per_member:.3f}"
        if arm.roi is not None:
            line += f"; ROI {arm.roi:.2f}"
        console.print(line)
    by_offer = offer_results(open_store(), key, kind)
    if any(row.offer not in ("control", "no offer") for row in by_offer):
        console.print("per offer (chosen per customer, so compare each with the control, not with each other):")
        for row in by_offer:
            console.print(f"  {row.offer}: {row.responders:,} of {row.contacted:,} = {row.rate:.4f}")


@campaigns_app.command("replay")
@reports_errors
def replay(key: str, kind: str, seed: int = 0) -> None:
    """Judge a Thompson-sampling bandit offline on a randomised campaign's log (Li et al. 2011 replay)."""
    from patron.engage.campaigns import replay_campaign  # noqa: PLC0415

    result = replay_campaign(open_store(), key, kind, seed=seed)
    console.print(
        f"Thompson sampling, replayed on {result.events:,} logged contacts ({result.accepted:,.0f} usable per replay): "
        f"{kind} rate {result.reward_rate:.4f} (95 % {result.ci_low:.4f} … {result.ci_high:.4f}); "
        f"random arms {result.uniform_rate:.4f}"
    )
    for arm, rate in result.arm_rates.items():
        console.print(f"  always {arm}: {rate:.4f}; the bandit's last wave gave it {result.final_share[arm]:.0%}")


@campaigns_app.command("recommend")
@reports_errors
def recommend(customer: str, k: Annotated[int, typer.Option(help="How many products.")] = 10) -> None:
    """The products recommended to this customer by the latest trained recommender (and why)."""
    from patron.cif.view import resolve_customer  # noqa: PLC0415
    from patron.engage.recommendations import recommendations_for  # noqa: PLC0415

    engine = open_store()
    found = recommendations_for(engine, resolve_customer(engine, customer), k=k)
    console.print(found.explanation)
    for rank, item in enumerate(found.items, start=1):
        console.print(f"  {rank}. {item.name} ({item.sku}), {item.price}")


@campaigns_app.command("train-recommender")
@reports_errors
def train_recommender(
    source: Annotated[str | None, typer.Option(help="Only this source's purchases.")] = None,
    split: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Train up to this day, test after (default: ¾ through)."),
    ] = None,
    k: Annotated[int, typer.Option(help="Judge (and store) the top k.")] = 10,
) -> None:
    """Choose a recommender (popularity, item-to-item, ALS, BPR) by hit-rate@k and NDCG@k on a time split, refit it
    on every purchase and store each customer's top k."""
    from patron.engage.recommendations import train_recommendations  # noqa: PLC0415

    result = train_recommendations(open_store(), source=source, split=split.date() if split else None, k=k)
    _print_evaluation(result.tested, result.split, k, result.hit_rate, result.ndcg)
    console.print(
        f"run {result.run_id}: {result.model} chosen; top {k} stored for {result.customers:,} customers "
        f"in {result.seconds:.1f} s"
    )


@campaigns_app.command("evaluate-recommender")
@reports_errors
def evaluate_recommender(
    split: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Train up to this day, test after.")],
    k: Annotated[int, typer.Option(help="Hit-rate@k and NDCG@k.")] = 10,
    item: Annotated[str, typer.Option(help="product or category")] = "product",
) -> None:
    """Hit-rate@k and NDCG@k of every recommender on a time split (nothing stored)."""
    from patron.engage.recommend import evaluate, purchases  # noqa: PLC0415

    bought = purchases(open_store(), item="category" if item == "category" else "product")
    result = evaluate(bought, split.date(), k=k)
    _print_evaluation(result.customers, result.split, k, result.hit_rate, result.ndcg)


def _print_evaluation(tested: int, split: dt.date, k: int, hit_rate: dict[str, float], ndcg: dict[str, float]) -> None:
    console.print(f"{tested:,} customers bought something new after {split}:")
    for name, rate in hit_rate.items():
        console.print(f"  {name}: hit-rate@{k} {rate:.1%}, NDCG@{k} {ndcg[name]:.3f}")
