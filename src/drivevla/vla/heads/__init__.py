"""DriveVLA's heads, each a module chosen by name in ``DriveVLAConfig.model``:

- :mod:`.action`: the action decoder (``head``: ``gru`` | ``regression``);
- :mod:`.refusal`: who decides refusals (``refusal_head``: None | ``bag``);
- :mod:`.intent`: the navigation-intent token (``intent_head``: None | ``bag`` |
  ``by_sentence``);
- :mod:`.explanation`: the explanation prompt (``explanation``: ``free`` | ``grounded``).
"""
