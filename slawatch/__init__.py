"""slawatch: live SLA monitoring for customer service.

The repository keeps the customer's layout (``shared/``, ``services/`` at the top); this
package puts both under one import namespace, ``slawatch.shared`` and ``slawatch.services``,
so an installed slawatch adds nothing else to site-packages. In a checkout the two names are
symbolic links to the folders; the wheel carries the folders themselves.
"""
