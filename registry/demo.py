"""A sample city for ``daylight run --demo``: departments, nine technologies, three reviews.

Everything goes through the real services, so assessments, events and webhooks are genuine.
The story is played in the order it happened, each step at its own moment before or after
the app clock's "now", so the event log reads like a year of a real programme.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import select
from sqlmodel import Session, col

from registry.assessments.services import ensure_default_policies, latest_assessment_dict
from registry.auth.models import Role
from registry.auth.services import Principal
from registry.comments.schemas import CommentIn
from registry.comments.services import post_comment
from registry.database import transaction
from registry.departments.models import Department
from registry.departments.services import add_department
from registry.reviews.models import Review
from registry.reviews.services import (
    close_due_comment_periods,
    decide_review,
    open_due_comment_periods,
    schedule_review,
    send_closing_soon_notices,
    update_review,
)
from registry.technologies.models import Technology
from registry.technologies.schemas import TechnologyIn
from registry.technologies.services import create_technology, submit_technology

LOADER = Principal("system", "Demo loader", Role.ADMIN, None)

Step = Callable[[Session, datetime], None]


def load_demo(app: Flask) -> bool:
    """Load the sample city once; returns False (and changes nothing) if the registry already
    has departments of the demo or any technology, so real data is never mixed with it."""
    with app.app_context():
        clock = app.extensions["daylight.clock"]
        base: datetime = clock.now()
        zone = ZoneInfo(str(app.config["TIMEZONE"]))
        with transaction(app) as session:
            if _already_loaded(session):
                return False
            ensure_default_policies(session, now=base)
            for when, step in sorted(_story(base, zone), key=lambda item: item[0]):
                step(session, when)
    return True


def _already_loaded(session: Session) -> bool:
    slugs = [slug for slug, _ in DEPARTMENTS]
    if session.execute(select(col(Department.id)).where(col(Department.slug).in_(slugs))
                       ).first() is not None:
        return True
    return session.execute(select(col(Technology.id)).limit(1)).first() is not None


def _at(base: datetime, zone: ZoneInfo, days: int, hour: int, minute: int = 0) -> datetime:
    """``days`` from ``base`` at a local wall-clock time (meetings are in the evening)."""
    day = (base.astimezone(zone) + timedelta(days=days)).date()
    return datetime.combine(day, time(hour, minute), zone).astimezone(base.tzinfo)


def _story(base: datetime, zone: ZoneInfo) -> list[tuple[datetime, Step]]:
    """Every step of the demo with the moment it happens."""
    made: dict[str, Technology] = {}
    reviews: dict[str, Review] = {}
    steps: list[tuple[datetime, Step]] = []
    first = base - timedelta(days=200)

    def add_departments(session: Session, when: datetime) -> None:
        for slug, name in DEPARTMENTS:
            add_department(session, slug=slug, name=name, now=when)

    steps.append((first, add_departments))

    for key, spec in TECHNOLOGIES.items():
        def register(session: Session, when: datetime, key: str = key,
                     spec: dict[str, Any] = spec) -> None:
            # Through the API's schema, so the sample is held to the same rules as real input.
            fields = TechnologyIn().load(
                {name: value for name, value in spec.items() if name != "submitted_days"})
            technology = create_technology(session, LOADER, fields, now=when)
            made[key] = submit_technology(session, LOADER, technology, now=when)

        steps.append((base + timedelta(days=spec["submitted_days"]), register))

    def schedule(key: str, opens: datetime, closes: datetime, meeting: datetime,
                 place: str) -> Step:
        def run(session: Session, when: datetime) -> None:
            technology = made[key]
            assessment = latest_assessment_dict(session, technology) or {}
            shortest = opens + timedelta(days=assessment.get("min_comment_days", 0))
            reviews[key] = schedule_review(session, LOADER, technology, {
                "comment_opens_at": opens, "comment_closes_at": max(closes, shortest),
                "meetings": [{"starts_at": meeting, "place": place, "languages": ["en", "es"],
                              "online_url": f"https://meet.example.gov/daylight-{key}"}],
            }, now=when)
        return run

    def timed(transition: Callable[..., list[str]]) -> Step:
        def run(session: Session, when: datetime) -> None:
            transition(session, now=when)
        return run

    def comment(key: str, fields: dict[str, Any]) -> Step:
        # Sample comments stand for ones already read, so they are published either way.
        def run(session: Session, when: datetime) -> None:
            post_comment(session, reviews[key], CommentIn().load(fields), moderation="post",
                         client=None, now=when)
        return run

    def decide(key: str, decision: dict[str, str]) -> Step:
        def run(session: Session, when: datetime) -> None:
            decide_review(session, reviews[key], decision, now=when)
        return run

    def extend(key: str, days: int, reason: str) -> Step:
        def run(session: Session, when: datetime) -> None:
            closes = reviews[key].comment_closes_at + timedelta(days=days)
            update_review(session, reviews[key], {"comment_closes_at": closes, "reason": reason},
                          now=when)
        return run

    # The camera network: reviewed last year and approved with conditions.
    cctv_opens, cctv_closes = _at(base, zone, -130, 9), _at(base, zone, -85, 17)
    steps += [
        (base - timedelta(days=140), schedule("cctv", cctv_opens, cctv_closes,
                                              _at(base, zone, -110, 18, 30),
                                              "Central Library, Community Room B")),
        (cctv_opens, timed(open_due_comment_periods)),
        (cctv_closes - timedelta(hours=20), timed(send_closing_soon_notices)),
        (cctv_closes, timed(close_due_comment_periods)),
        (base - timedelta(days=60), decide("cctv", {
                "outcome": "approved_with_conditions",
                "rationale": "The council found the cameras useful for investigating serious "
                             "incidents in busy public places, provided footage is kept "
                             "briefly and never watched to follow people who are not "
                             "suspected of a crime.",
                "conditions": "Delete footage after 30 days unless it is evidence in a case. "
                              "No face recognition on any camera. Publish a yearly list of "
                              "camera locations and of every request for footage.",
            })),
    ]
    # The licence-plate readers: open for comment now, extended once.
    alpr_opens, alpr_closes = _at(base, zone, -12, 9), _at(base, zone, 33, 17)
    steps += [
        (base - timedelta(days=20), schedule("alpr", alpr_opens, alpr_closes,
                                             _at(base, zone, 10, 18, 30),
                                             "Eastside Community Center, 1200 Alder Street")),
        (alpr_opens, timed(open_due_comment_periods)),
        (base - timedelta(days=2), extend(
            "alpr", 7, "Asked for by the Eastside Neighbourhood Association, so that notes "
                       "from the public meeting can be read before comments close.")),
    ]
    # The gunshot detectors: a review scheduled to open in two weeks.
    steps.append((base - timedelta(days=3), schedule(
        "gunshot", _at(base, zone, 14, 9), _at(base, zone, 59, 17),
        _at(base, zone, 30, 18, 30), "Southside Recreation Center, Gym")))

    for key, day, hour, fields in COMMENTS:
        steps.append((_at(base, zone, day, hour), comment(key, fields)))
    return steps


# --- the sample city -----------------------------------------------------------------------

DEPARTMENTS = (
    ("police", "Police Department"),
    ("transportation", "Department of Transportation"),
    ("public-works", "Public Works"),
    ("fire", "Fire Department"),
)

_DOCS = "https://daylight.example.gov/documents"

#: Each record as a department would answer it; ``submitted_days`` is when it was submitted,
#: counted from now (negative: in the past).
TECHNOLOGIES: dict[str, dict[str, Any]] = {
    "cctv": {
        "submitted_days": -160, "name": "Public-space camera network", "department": "police",
        "vendor": "Harborview Security Integrators",
        "description": "About 140 fixed cameras in parks, transit plazas and the downtown "
                       "shopping streets, recorded at a police monitoring room.",
        "purpose": "Investigate serious incidents in busy public places after they happen, and "
                   "send help faster during large events.",
        "data_collected": ["video"], "capabilities": ["live_video_streaming"],
        "data_sharing": ["regional_law_enforcement"], "retention_days": 30,
        "access_controls": "Footage is viewed only by trained monitoring staff; every export is "
                           "logged with a case number and reviewed monthly by a supervisor.",
        "deployment_areas": ["Downtown", "Harbor District", "Eastside", "Northgate",
                             "Southside", "Riverside"],
        "annual_cost": 410000, "in_use": True,
        "equity_impact": "Cameras in transit plazas record many people who rely on buses, who "
                         "are more often low-income residents.",
        "community_engagement": "Three neighbourhood meetings and an online survey in 2025.",
        "mitigations": "No camera points into homes; footage is deleted after 30 days.",
        "authorized_uses": "Investigating violent crime and serious traffic collisions; "
                           "coordinating emergency response at large events.",
        "prohibited_uses": "Identifying people at protests or religious gatherings; face "
                           "recognition; immigration enforcement.",
        "alternatives_considered": "More lighting and staffed kiosks in some plazas.",
        "funding_source": "General fund",
        "documents": [{"title": "Surveillance impact report",
                       "url": f"{_DOCS}/cctv-impact-report.pdf"}],
    },
    "counters": {
        "submitted_days": -100, "name": "Bicycle and pedestrian counters",
        "department": "transportation", "vendor": "Tally Mobility",
        "description": "Infrared and pavement sensors that count people walking and cycling "
                       "past 40 points on the street network.",
        "purpose": "Plan bike lanes and crossings where people actually travel.",
        "data_collected": ["traffic_counts"], "capabilities": ["none"],
        "data_sharing": ["public"], "retention_days": 365,
        "access_controls": "Counts are anonymous totals per 15 minutes; published as open data.",
        "deployment_areas": ["Downtown", "Eastside", "Northgate", "Southside", "Riverside",
                             "Harbor District"],
        "annual_cost": 38000, "in_use": True,
        "equity_impact": "Counts guide where safety money goes; areas without counters could "
                         "be overlooked.",
        "community_engagement": "Counter locations were chosen with neighbourhood groups.",
        "mitigations": "At least four counters in every council district.",
        "authorized_uses": "Transport planning and yearly safety reports.",
        "prohibited_uses": "Any attempt to identify or follow a person.",
        "alternatives_considered": "Manual counts twice a year.",
        "funding_source": "State active-transportation grant",
    },
    "alpr": {
        "submitted_days": -70, "name": "Automated licence-plate readers", "department": "police",
        "vendor": "Northgate Vision Systems",
        "description": "24 fixed cameras at major intersections and 6 patrol cars with cameras "
                       "that read the plate of every passing vehicle and record where and when "
                       "it was seen.",
        "purpose": "Find stolen vehicles and vehicles named in Amber Alerts or felony warrants.",
        "data_collected": ["licence_plates", "vehicle_location", "images"],
        "capabilities": ["licence_plate_recognition", "historical_search"],
        "data_sharing": ["regional_law_enforcement"], "retention_days": 90,
        "access_controls": "Named officers search with a case number; every search is logged "
                           "and audited quarterly.",
        "deployment_areas": ["Downtown", "Eastside", "Harbor District", "Northgate corridor"],
        "annual_cost": 186000, "in_use": True,
        "equity_impact": "Half the fixed cameras are on Eastside arterials, so Eastside drivers "
                         "are recorded far more often than others.",
        "community_engagement": "One briefing to the Public Safety Committee.",
        "mitigations": "Hotlists are refreshed daily so stale entries do not cause stops.",
        "authorized_uses": "Stolen vehicles, Amber Alerts, vehicles tied to a felony warrant.",
        "prohibited_uses": "Immigration enforcement; tracking people going to clinics, places "
                           "of worship or protests.",
        "alternatives_considered": "Officers checking plates by hand.",
        "funding_source": "Federal public-safety grant, then general fund",
        "documents": [{"title": "Surveillance impact report",
                       "url": f"{_DOCS}/alpr-impact-report.pdf"},
                      {"title": "Draft use policy", "url": f"{_DOCS}/alpr-use-policy.pdf"}],
    },
    "streetlights": {
        "submitted_days": -45, "name": "Smart streetlight sensors", "department": "public-works",
        "vendor": "Lumen Civic Networks",
        "description": "Sensor nodes on 300 LED streetlights that measure air quality and noise "
                       "and count vehicles, with small cameras on 60 of them.",
        "purpose": "Dim lights when streets are empty, track air quality and count traffic.",
        "data_collected": ["environmental", "traffic_counts", "video"],
        "capabilities": ["object_detection"], "data_sharing": ["other_city_departments"],
        "retention_days": 5,
        "access_controls": "Video stays on the node; only counts leave it, unless Public Works "
                           "staff download a clip for a maintenance fault.",
        "deployment_areas": ["Downtown", "Harbor District"],
        "annual_cost": 95000, "in_use": True,
        "equity_impact": "Only two areas have the sensors so far.",
        "funding_source": "Energy-savings bond",
    },
    "traffic": {
        "submitted_days": -50, "name": "Traffic management cameras",
        "department": "transportation", "vendor": "Signalwise",
        "description": "Low-resolution cameras at 85 signalled intersections, watched live at "
                       "the traffic operations centre.",
        "purpose": "Retime signals around collisions and congestion, and clear blocked "
                   "intersections quickly.",
        "data_collected": ["video"], "capabilities": ["live_video_streaming"],
        "data_sharing": ["none"], "retention_days": 0,
        "access_controls": "Live view only at the operations centre; nothing is recorded.",
        "deployment_areas": ["Downtown", "Eastside", "Northgate", "Southside", "Riverside"],
        "annual_cost": 60000, "in_use": True,
        "equity_impact": "Cameras follow the busiest intersections, which are spread citywide.",
        "community_engagement": "Presented at the Transportation Advisory Board.",
        "mitigations": "Resolution too low to recognise faces or read plates.",
        "authorized_uses": "Managing traffic signals and incidents.",
        "prohibited_uses": "Enforcement, investigations, or sharing live views with police.",
        "alternatives_considered": "Fixed signal timing plans.",
        "funding_source": "Transportation fund",
    },
    "gunshot": {
        "submitted_days": -40, "name": "Acoustic gunshot detection", "department": "police",
        "vendor": "Resonant Signal Analytics",
        "description": "Microphones on rooftops and poles covering about six square miles "
                       "that listen for loud bangs and send the likely location of a gunshot "
                       "to dispatch.",
        "purpose": "Send officers and medics to shootings that nobody reports by phone.",
        "data_collected": ["audio"], "capabilities": ["gunshot_detection"],
        "data_sharing": ["vendor"], "retention_days": 365,
        "access_controls": "Alerts go to dispatch; the vendor keeps short audio clips around "
                           "each alert.",
        "deployment_areas": ["Southside", "Riverside"],
        "annual_cost": 320000, "in_use": False,
        "equity_impact": "Sensors would cover only two neighbourhoods, where most residents are "
                         "Black or Latino, bringing more police visits there.",
        "community_engagement": "",
        "authorized_uses": "Dispatching to possible gunfire.",
        "prohibited_uses": "Recording conversations.",
        "funding_source": "Proposed general fund increase",
    },
    "drones": {
        "submitted_days": -25, "name": "Emergency response drones", "department": "fire",
        "vendor": "SkyAid Robotics",
        "description": "Four drones with ordinary and thermal cameras flown by certified "
                       "firefighters.",
        "purpose": "See inside large fires and find missing people in parks and along the "
                   "river.",
        "data_collected": ["video", "images"],
        "capabilities": ["aerial_recording", "live_video_streaming"],
        "data_sharing": ["none"], "retention_days": 30,
        "access_controls": "Flights are logged with their reason; footage is kept by the Fire "
                           "Department only.",
        "deployment_areas": ["Citywide, at emergencies only"],
        "annual_cost": 52000, "in_use": False,
        "equity_impact": "Flights happen where emergencies are.",
        "community_engagement": "Demonstration at two fire-station open days.",
        "mitigations": "Cameras point down only during searches; no flights over crowds.",
        "authorized_uses": "Fires, hazardous-material spills, searches for missing people.",
        "prohibited_uses": "Police surveillance, watching protests, routine patrols.",
        "alternatives_considered": "Renting a helicopter from the county.",
        "funding_source": "Fire Department equipment budget",
    },
    "social": {
        "submitted_days": -18, "name": "Social-media threat monitoring",
        "department": "police", "vendor": "Clearline Intelligence",
        "description": "A subscription service that scans public posts for keywords and "
                       "builds profiles of accounts linked to flagged posts.",
        "purpose": "Find threats of violence against schools and public events.",
        "data_collected": ["social_media", "personal_identifiers"],
        "capabilities": ["social_media_monitoring", "data_fusion", "covert_use"],
        "data_sharing": ["regional_law_enforcement", "federal_agencies"],
        "retention_days": 730, "in_use": True, "annual_cost": 75000,
        "deployment_areas": ["Online"],
        "access_controls": "Three analysts in the intelligence unit.",
        "authorized_uses": "Threats of violence.",
        "funding_source": "Asset forfeiture fund",
    },
    "face": {
        "submitted_days": -9, "name": "Face-recognition search of booking photos",
        "department": "police", "vendor": "Veritas Biometrics",
        "description": "Software that compares a photo of an unknown person with the county's "
                       "booking photos and returns a list of possible matches.",
        "purpose": "Generate leads to identify suspects in serious crimes.",
        "data_collected": ["face_images", "biometric", "criminal_justice"],
        "capabilities": ["face_recognition", "historical_search"],
        "data_sharing": ["state_agencies"], "retention_days": None,
        "access_controls": "Two trained examiners; a second examiner checks every possible "
                           "match.",
        "deployment_areas": ["Citywide"], "annual_cost": 44000, "in_use": False,
        "authorized_uses": "Violent felonies, with a supervisor's approval.",
        "prohibited_uses": "Live video; identifying people at lawful gatherings.",
    },
}

_FORM_LETTER = ("Ninety days is far too long to keep a record of where every car in our city "
                "has been. Please delete plate reads that match no hotlist within 24 hours, "
                "publish a yearly audit of every search, and never share the data with "
                "immigration authorities.")

#: (technology, day from now, local hour, comment). Three are the same form letter, sent
#: with small differences, as campaigns do.
COMMENTS: tuple[tuple[str, int, int, dict[str, Any]], ...] = (
    ("cctv", -125, 12, {"body": "Cameras in the transit plaza made me feel safer waiting for "
                                "the night bus. Please keep them, but do not keep footage "
                                "longer than you need.",
                        "display_name": "Dana P.", "neighborhood": "Downtown",
                        "position": "support"}),
    ("cctv", -118, 19, {"body": "I do not want cameras that can follow me from the park to my "
                                "front door. If they stay, ban face recognition in writing.",
                        "display_name": "Anonymous resident", "neighborhood": "Eastside",
                        "position": "oppose"}),
    ("cctv", -96, 8, {"body": "Who checks that exports really have a case number? The yearly "
                              "report should say how many requests were refused.",
                      "display_name": "R. Nguyen", "neighborhood": "Riverside",
                      "position": "neutral"}),
    ("alpr", -11, 10, {"body": _FORM_LETTER, "display_name": "Maria L.",
                       "neighborhood": "Eastside", "position": "oppose"}),
    ("alpr", -10, 13, {"body": "My car was stolen last spring and the plate readers found it "
                               "in two days. I support keeping them, with strict audits.",
                       "display_name": "Tom B.", "neighborhood": "Northgate",
                       "position": "support"}),
    ("alpr", -8, 18, {"body": _FORM_LETTER.upper().replace(".", "!"),
                      "display_name": "J. Okafor", "neighborhood": "Eastside",
                      "position": "oppose"}),
    ("alpr", -6, 21, {"body": "Why are twelve of the 24 fixed cameras on Eastside streets? "
                              "Please publish the map and explain how the sites were chosen.",
                      "neighborhood": "Eastside", "position": "neutral"}),
    ("alpr", -4, 9, {"body": "  " + _FORM_LETTER.replace(",", "") + "  ",
                     "display_name": "Anonymous resident", "neighborhood": "Harbor District",
                     "position": "oppose"}),
    ("alpr", -1, 16, {"body": "Sharing with every agency in the region means our data "
                              "leaves the city's control. Limit it to named agencies with a "
                              "written agreement.",
                      "display_name": "Priya S.", "neighborhood": "Downtown"}),
)
