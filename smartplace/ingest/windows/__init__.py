"""Windows: event-time tumbling windows per device, and what is computed over them.

``WindowAggregator`` (``tumbling``) keeps each device's open windows, with
quantile ``sketch``es; ``SiteDaqi`` the hourly air quality index per site
(``daqi``'s banding); ``CollectionDetector`` (``bins``) finds bin collections.
What flows on: ``WindowAggregates``.
"""

from smartplace.ingest.windows.bins import CollectionDetector
from smartplace.ingest.windows.site_daqi import SiteDaqi
from smartplace.ingest.windows.tumbling import WindowAggregates, WindowAggregator

__all__ = ["CollectionDetector", "SiteDaqi", "WindowAggregates", "WindowAggregator"]
