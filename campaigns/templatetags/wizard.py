from django import template

register = template.Library()


@register.filter
def bound(form, name: str):
    """``form|bound:"s2_kind"``: the bound field of that name."""
    return form[name]


REWARD_PARAMS = [
    ("item", "free_item"),
    ("count", "bonus_stamps bonus_points"),
    ("percent", "discount"),
    ("amount", "discount"),
    ("badge", "badge"),
    ("expiry_days", "free_item bonus_stamps bonus_points discount badge"),
]


@register.simple_tag
def reward_params(form, n):
    """(bound field, the reward kinds it belongs to) for send ``n``'s reward."""
    return [(form[f"s{n}_{name}"], kinds) for name, kinds in REWARD_PARAMS]


@register.filter
def make_list_words(value: str) -> list[str]:
    return value.split()


@register.filter
def dictget(mapping, key):
    return (mapping or {}).get(key, 0)
