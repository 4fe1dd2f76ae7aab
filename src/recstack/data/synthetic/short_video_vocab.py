"""Vocabularies and knobs of the synthetic short-video play log."""

from __future__ import annotations

import numpy as np

LANGUAGES: tuple[str, ...] = ("hi", "en", "ta", "te", "bn", "mr", "or", "kn", "ml", "gu", "pa")
_LANGUAGE_WEIGHTS = np.array([0.38, 0.12, 0.08, 0.08, 0.07, 0.07, 0.03, 0.05, 0.04, 0.04, 0.04])
CONNECTIONS: tuple[str, ...] = ("4G", "wifi", "3G", "2G", "5G")
_CONNECTION_WEIGHTS = np.array([0.58, 0.25, 0.09, 0.03, 0.05])
OS_PLATFORMS: tuple[str, ...] = ("android", "ios")
_IOS_SHARE = 0.08
ANDROID_VERSIONS: tuple[str, ...] = ("8.1.0", "9", "10", "11", "12", "13")
_ANDROID_WEIGHTS = np.array([0.05, 0.10, 0.22, 0.30, 0.23, 0.10])
IOS_VERSIONS: tuple[str, ...] = ("14.8.1", "15.6.1", "15.7", "16.0.3", "16.1", "16.1.1")
_IOS_WEIGHTS = np.array([0.05, 0.15, 0.15, 0.20, 0.25, 0.20])
FEED_SOURCES: tuple[str, ...] = ("for_you", "trending", "following", "explore", "notification", "deeplink")
_FEED_SOURCE_WEIGHTS = np.array([0.55, 0.15, 0.12, 0.10, 0.05, 0.03])
# The example batch's hashed values decode (xxhash, as the spec describes) to user_connection "4G",
# user_os_platform "android", user_os_ver "12", item/user_lang "or" and creator_level "5" / null: the
# vocabularies below contain those production spellings.
CREATOR_LEVELS: tuple[str, ...] = ("0", "1", "2", "3", "4", "5")
CREATOR_USER_TYPES: tuple[str, ...] = ("ugc", "verified", "influencer", "brand", "ops")
_CREATOR_TYPE_WEIGHTS = np.array([0.70, 0.12, 0.10, 0.05, 0.03])

N_CLUSTERS: int = 20  # interest clusters (at most n_items of them are used)
LATENT_DIM: int = 16  # dimension of the latent user / item factors
NULL_RATE: float = 0.05  # default share of nulls in every float and string feature column
UNKNOWN_LOCATION_RATE: float = 0.30  # share of users whose latitude / longitude is -1.0
OWN_CLUSTER_RATE: float = 0.70  # share of plays drawn from the user's own interest cluster
_OWN_LANGUAGE_RATE = 0.80  # ... and among those, share drawn from the user's language within the cluster
ITEM_ZIPF_EXPONENT: float = 0.8  # item popularity ~ rank^-0.8 (times a quality / creator-popularity term)
_ITEMS_PER_CREATOR = 8
WINDOW_END: int = 1_669_852_800  # 2022-12-01 00:00:00 UTC: the spec trains on 7 days until 11/30
WINDOW_START: int = WINDOW_END - 7 * 86_400

# (latitude, longitude) of a few cities per language, used for users whose location is known.
_CITIES: dict[str, tuple[tuple[float, float], ...]] = {
    "hi": ((28.61, 77.21), (26.85, 80.95), (26.91, 75.79), (25.59, 85.14), (23.26, 77.41)),
    "en": ((12.97, 77.59), (19.08, 72.88), (28.61, 77.21), (17.39, 78.49)),
    "ta": ((13.08, 80.27), (11.02, 76.96), (9.93, 78.12)),
    "te": ((17.39, 78.49), (16.51, 80.65), (17.69, 83.22)),
    "bn": ((22.57, 88.36), (26.73, 88.40), (23.24, 87.86)),
    "mr": ((19.08, 72.88), (18.52, 73.86), (21.15, 79.09)),
    "or": ((20.30, 85.82), (20.46, 85.88), (19.31, 84.79)),
    "kn": ((12.97, 77.59), (12.30, 76.64), (15.36, 75.12)),
    "ml": ((9.93, 76.27), (8.52, 76.94), (11.26, 75.78)),
    "gu": ((23.02, 72.57), (21.17, 72.83), (22.31, 73.18)),
    "pa": ((30.73, 76.78), (30.90, 75.86), (31.63, 74.87)),
}

# Entity-id columns: never null in the play log.
ENTITY_ID_COLUMNS = ("client_id", "item_id", "creator_id")
