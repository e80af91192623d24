"""The notify pipeline's stages, each pure and small: route (config.RoutingConfig.route),
quiet hours, inhibit, silence, group, rate-limit, retry and repeat. Time is always passed
in, so each can be tested without sleeping; the dispatcher is the only place that waits.
"""
