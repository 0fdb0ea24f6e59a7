"""Campaign management for owners and managers: CRUD with the wizard's validation, the status
actions, the audience count, results and the nightly runs."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from campaigns import engine, selectors, services
from campaigns.models import Campaign, CampaignSend, CampaignStatus, EvaluationRun
from campaigns.results import campaign_results
from campaigns.rules import campaign_validate
from members.models import WalletReward
from winback.api import ApiError, Cursor, ErrorSerializer, ManagerAPIView

from . import serializers as s

TAG = "campaigns"
AUDIENCE_FIELDS = ("inactivity_days", "max_sends", "conditions", "channels")


def campaign_or_404(campaign_id: int) -> Campaign:
    # The scoped manager sees only the caller's business: another business's id is a 404.
    campaign = Campaign.objects.select_related("business").filter(pk=campaign_id).first()
    if campaign is None:
        raise ApiError(404, "not_found", "No such campaign.")
    return campaign


class CampaignListView(ManagerAPIView):
    """The business's campaigns, newest first; POST saves a new draft."""

    serializer_class = s.CampaignSerializer

    @extend_schema(
        tags=[TAG],
        parameters=[OpenApiParameter("status", str, enum=CampaignStatus.values, required=False)],
        responses=s.CampaignSerializer(many=True),
    )
    def get(self, request):
        campaigns = Campaign.objects.select_related("business")
        wanted = request.query_params.get("status", "")
        if wanted in CampaignStatus.values:
            campaigns = campaigns.filter(status=wanted)
        page = self.paginate_queryset(campaigns)
        return self.get_paginated_response(s.CampaignSerializer(page, many=True).data)

    @extend_schema(tags=[TAG], request=s.CampaignInSerializer, responses={201: s.CampaignSerializer})
    def post(self, request):
        data = s.CampaignInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = services.campaign_save(business=self.business, data=data.validated_data, user=request.user)
        return Response(s.CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailView(ManagerAPIView):
    """One campaign. PATCH changes it: a draft as it is built, an active campaign from the next
    night on (validated fully). An archived campaign cannot change."""

    @extend_schema(tags=[TAG], responses={200: s.CampaignSerializer})
    def get(self, request, campaign_id: int):
        return Response(s.CampaignSerializer(campaign_or_404(campaign_id)).data)

    @extend_schema(
        tags=[TAG],
        request=s.CampaignInSerializer,
        responses={200: s.CampaignSerializer, 409: OpenApiResponse(ErrorSerializer, description="Archived.")},
    )
    def patch(self, request, campaign_id: int):
        campaign = campaign_or_404(campaign_id)
        data = s.CampaignInSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if campaign.status == CampaignStatus.ARCHIVED:
            raise ApiError(409, "archived", "An archived campaign cannot be changed; duplicate it instead.")
        campaign = services.campaign_save(business=self.business, data=data.validated_data, campaign=campaign)
        return Response(s.CampaignSerializer(campaign).data)


class _Action(ManagerAPIView):
    def act(self, campaign: Campaign) -> Campaign:
        raise NotImplementedError

    @extend_schema(tags=[TAG], request=None, responses={200: s.CampaignSerializer})
    def post(self, request, campaign_id: int):
        campaign = self.act(campaign_or_404(campaign_id))
        campaign.refresh_from_db()
        return Response(s.CampaignSerializer(campaign).data)


class CampaignActivateView(_Action):
    """Activate: every step is validated again (errors by field). It starts checking from the next
    local midnight."""

    def act(self, campaign):
        return services.campaign_activate(campaign=campaign)


class CampaignPauseView(_Action):
    """Pause at once: every send not yet made is cancelled."""

    def act(self, campaign):
        services.campaign_pause(campaign=campaign)
        return campaign


class CampaignResumeView(_Action):
    """Resume a paused campaign; the next night decides who is due."""

    def act(self, campaign):
        return services.campaign_resume(campaign=campaign)


class CampaignArchiveView(_Action):
    """Archive (from any status): pending sends are cancelled."""

    def act(self, campaign):
        return services.campaign_archive(campaign=campaign)


class CampaignDuplicateView(ManagerAPIView):
    """A draft copy with every setting, named “… (copy)”."""

    @extend_schema(tags=[TAG], request=None, responses={201: s.CampaignSerializer})
    def post(self, request, campaign_id: int):
        copy = services.campaign_duplicate(campaign=campaign_or_404(campaign_id), user=request.user)
        return Response(s.CampaignSerializer(copy).data, status=status.HTTP_201_CREATED)


def _audience(campaign: Campaign) -> dict:
    business = campaign.business
    night = timezone.localdate(timezone.now(), business.tzinfo) + timedelta(days=1)
    audience = engine.campaign_audience(campaign, local_date=night, limit=0)
    funnel = audience.funnel
    return {
        "count": audience.count,
        "local_date": night,
        "away": audience.away,
        "funnel": {
            "lapsed": funnel.lapsed,
            "stages": [{"stage": key, "count": funnel.stages.get(key, 0)} for key, _ in engine.FUNNEL_STAGES],
            "unreachable_by_channel": [{"channel": ch, **r} for ch, r in funnel.unreachable_by.items()],
            "messaged": funnel.messaged,
            "messaged_by_channel": [{"channel": ch, "count": n} for ch, n in funnel.reach.items()],
        },
    }


class AudienceView(ManagerAPIView):
    """How many members a campaign body would reach on the next night (the wizard's live count),
    as a funnel: lapsed, then each stage that leaves members out, then messaged (the control group
    held out).
    Only the trigger, the conditions and the channels are read; the rest may be unfinished."""

    @extend_schema(tags=[TAG], request=s.CampaignInSerializer, responses={200: s.AudienceSerializer})
    def post(self, request):
        data = s.CampaignInSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        campaign = services.campaign_build(business=self.business, data=dict(data.validated_data))
        try:
            campaign_validate(campaign, for_activation=False)
        except ValidationError as exc:  # only the fields the count reads matter here
            errors = {k: v for k, v in exc.message_dict.items() if k in AUDIENCE_FIELDS}
            if errors:
                raise ValidationError(errors) from None
        return Response(s.AudienceSerializer(_audience(campaign)).data)


class CampaignAudienceView(ManagerAPIView):
    """How many members this campaign would reach on the next night, as a funnel (see above)."""

    @extend_schema(tags=[TAG], responses={200: s.AudienceSerializer})
    def get(self, request, campaign_id: int):
        return Response(s.AudienceSerializer(_audience(campaign_or_404(campaign_id))).data)


class CampaignResultsView(ManagerAPIView):
    """What the campaign did and brought back: sends by arm and outcome, deliveries by channel and
    status, opens, rewards; per arm won back, rate and revenue; A versus B and the campaign versus
        its control group with a small-sample 95 % interval, the probability it is better and a state;
    the page's plain sentence; the same by night."""

    @extend_schema(tags=[TAG], responses={200: s.ResultsSerializer})
    def get(self, request, campaign_id: int):
        from notifications.models import Delivery

        campaign = campaign_or_404(campaign_id)
        sends = CampaignSend.objects.filter(campaign_id=campaign.pk)
        results = campaign_results(campaign)

        def arm(f):
            return {"arm": f.arm, "members": f.members, "sends": f.sends, "reached": f.reached, "opened": f.opened,
                    "won": f.won, "win_rate": f.win_rate, "open_rate": f.open_rate, "revenue": f.revenue}  # fmt: skip

        def comparison(c, label_a: str, label_b: str):
            if c is None:
                return None
            return {**c.__dict__, "label_a": label_a, "label_b": label_b, "rate_a": c.rate_a, "rate_b": c.rate_b,
                    "incremental": c.incremental, "incremental_low": c.incremental_low,
                    "incremental_high": c.incremental_high, "incremental_revenue": c.incremental_revenue,
                    "incremental_revenue_low": c.incremental_revenue_low,
                    "incremental_revenue_high": c.incremental_revenue_high}  # fmt: skip

        body = {
            "campaign": campaign.pk,
            "attribution_days": campaign.attribution_days,
            "arms": [arm(f) for f in results.arms.values()],
            "treatment": arm(results.treatment),
            "ab": comparison(results.ab, "A", "B"),
            "lift": comparison(results.lift, "control", "campaign"),
            "lift_by_arm": [comparison(c, "control", arm) for arm, c in results.lift_by_arm.items()],
            "state": results.state,
            "summary": results.summary,
            "by_night": results.by_night,
            "members_targeted": results.total.members,
            "opened": results.total.opened,
            "sends": list(sends.values("arm", "outcome").annotate(count=Count("pk")).order_by("arm", "outcome")),
            "deliveries": list(
                Delivery.objects.filter(campaign_id=campaign.pk)
                .values("channel", "status")
                .annotate(count=Count("pk"))
                .order_by("channel", "status")
            ),
            "rewards": list(
                WalletReward.objects.filter(send__campaign_id=campaign.pk)
                .values("status")
                .annotate(count=Count("pk"))
                .order_by("status")
            ),
        }
        return Response(s.ResultsSerializer(body).data)


class CampaignRunsView(ManagerAPIView):
    """The nightly runs that evaluated this campaign, newest first, with its figures of the night."""

    serializer_class = s.RunSerializer
    pagination_class = type("RunCursor", (Cursor,), {"ordering": ("-local_date", "-id")})

    @extend_schema(tags=[TAG], responses=s.RunSerializer(many=True))
    def get(self, request, campaign_id: int):
        campaign = campaign_or_404(campaign_id)
        page = self.paginate_queryset(EvaluationRun.objects.filter(stats__has_key=str(campaign.pk)))
        rows = selectors.campaign_runs(campaign=campaign, runs=page)
        return self.get_paginated_response(s.RunSerializer(rows, many=True).data)
