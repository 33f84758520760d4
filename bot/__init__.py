"""Zhiban (值班): the duty and paging bot of a school district's emergency management."""
