"""The dispatcher's private engine: sending on a point, retries, events, saving and batches.

Nothing outside `multichannel.dispatcher` (and the root's re-export of
`BatchResult`) imports it.
"""
