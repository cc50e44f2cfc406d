"""Controlled vocabularies for a technology's structured fields.

Each vocabulary maps a stable machine value (used in the API, in policy rules and in webhook
payloads) to a plain-language label shown to residents. Values are never renamed once
published: partners filter on them. New values may be added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Categories of data a technology collects or records.
DATA_COLLECTED: Mapping[str, str] = {
    "video": "Video of public places or people",
    "audio": "Audio recordings or sound detection",
    "images": "Still photographs",
    "licence_plates": "Vehicle licence plates",
    "vehicle_location": "Where vehicles are and have been",
    "location": "Where people are and have been (phone, GPS or similar)",
    "face_images": "Images of people's faces",
    "biometric": "Biometric data (face, voice, gait, fingerprints, iris)",
    "social_media": "Social-media posts, profiles or connections",
    "communications": "Contents or metadata of phone calls, messages or email",
    "personal_identifiers": "Names, addresses, dates of birth or ID numbers",
    "criminal_justice": "Arrest, charge, warrant or probation records",
    "health": "Health or medical information",
    "financial": "Financial or payment information",
    "network_traffic": "Internet or network traffic",
    "environmental": "Environmental readings (air, noise levels, temperature)",
    "traffic_counts": "Anonymous counts of vehicles, bicycles or pedestrians",
}

#: What the technology can do with the data.
CAPABILITIES: Mapping[str, str] = {
    "face_recognition": "Identify or match people by their face",
    "other_biometric_identification": "Identify people by voice, gait or other biometrics",
    "licence_plate_recognition": "Read licence plates automatically",
    "realtime_tracking": "Follow a person or vehicle in real time",
    "historical_search": "Search stored records of where people or vehicles were",
    "gunshot_detection": "Detect and locate gunshots or loud sounds",
    "aerial_recording": "Record from the air (drones, aircraft)",
    "covert_use": "Be used without the people affected knowing",
    "data_fusion": "Combine data from several sources into one picture",
    "automated_decisions": "Make or recommend decisions about residents automatically",
    "predictive_analytics": "Predict where incidents will happen or who will be involved",
    "social_media_monitoring": "Monitor social-media activity",
    "live_video_streaming": "Stream live video to staff",
    "object_detection": "Detect objects, vehicles or people in images",
    # An explicit "none" (as in DATA_SHARING) lets staff say so, because an empty list is read
    # as "not stated" and leaves capability checks needing information.
    "none": "None of the capabilities listed here",
}

#: Who the data is shared with outside the department that collects it.
DATA_SHARING: Mapping[str, str] = {
    "none": "Not shared outside the department",
    "other_city_departments": "Other city departments",
    "regional_law_enforcement": "Other local or regional police agencies",
    "state_agencies": "State agencies",
    "federal_agencies": "Federal agencies",
    "immigration_enforcement": "Immigration enforcement agencies",
    "vendor": "The vendor, for its own purposes",
    "data_brokers": "Data brokers or other commercial buyers",
    "researchers": "Researchers under agreement",
    "public": "The public, as open data",
}

#: Every controlled field of a technology and its vocabulary.
VOCABULARIES: Mapping[str, Mapping[str, str]] = {
    "data_collected": DATA_COLLECTED,
    "capabilities": CAPABILITIES,
    "data_sharing": DATA_SHARING,
}


def unknown_values(field: str, values: Iterable[str]) -> list[str]:
    """Return the values that are not in ``field``'s vocabulary, in the order given."""
    vocabulary = VOCABULARIES[field]
    return [value for value in values if value not in vocabulary]


def label(field: str, value: str) -> str:
    """Return the plain-language label of ``value`` in ``field``'s vocabulary (or the value)."""
    return VOCABULARIES.get(field, {}).get(value, value)
