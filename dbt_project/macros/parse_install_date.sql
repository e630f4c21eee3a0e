{#-
    Install dates are published as free text. Recognised forms, optionally prefixed by "<" ("before"):
      2017-06-30, 2017/06/30, 2019-03-01 00:00:00, 2019-03-01T00:00:00  -> day
      30/06/2017 (day first, the UK convention)                          -> day
      2015, 2015.0 (a year written as a float)                            -> year  (1 January)
      2016-06, 2016/06, 2016.06                                           -> month (first day of the month)
    "<2016-06" (Kruitwagen et al.) means "before June 2016": date 2016-06-01, precision month,
    qualifier 'before'. Anything else, impossible dates (2019-02-30) and years outside 1900-2099
    give a null date, a null precision and a null qualifier.
-#}

{% macro _install_date_text(column) -%}
    nullif(trim(cast({{ column }} as varchar)), '')
{%- endmacro %}

{% macro _install_date_body(column) -%}
    ltrim({{ _install_date_text(column) }}, '< ')
{%- endmacro %}

{% macro _install_date_patterns() -%}
    {{ return({
        'day': '((?:19|20)\d{2})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?',
        'day_first': '(\d{1,2})/(\d{1,2})/((?:19|20)\d{2})',
        'month': '((?:19|20)\d{2})[-/.](\d{1,2})',
        'year': '((?:19|20)\d{2})(?:\.0+)?',
    }) }}
{%- endmacro %}

{% macro parse_install_date(column) -%}
    {%- set body = _install_date_body(column) -%}
    {%- set p = _install_date_patterns() -%}
    (case
        when regexp_full_match({{ body }}, '{{ p.day }}') then try(make_date(
            cast(regexp_extract({{ body }}, '^{{ p.day }}', 1) as integer),
            cast(regexp_extract({{ body }}, '^{{ p.day }}', 2) as integer),
            cast(regexp_extract({{ body }}, '^{{ p.day }}', 3) as integer)))
        when regexp_full_match({{ body }}, '{{ p.day_first }}') then try(make_date(
            cast(regexp_extract({{ body }}, '^{{ p.day_first }}', 3) as integer),
            cast(regexp_extract({{ body }}, '^{{ p.day_first }}', 2) as integer),
            cast(regexp_extract({{ body }}, '^{{ p.day_first }}', 1) as integer)))
        when regexp_full_match({{ body }}, '{{ p.year }}') then try(make_date(
            cast(regexp_extract({{ body }}, '^{{ p.year }}', 1) as integer), 1, 1))
        when regexp_full_match({{ body }}, '{{ p.month }}') then try(make_date(
            cast(regexp_extract({{ body }}, '^{{ p.month }}', 1) as integer),
            cast(regexp_extract({{ body }}, '^{{ p.month }}', 2) as integer),
            1))
    end)
{%- endmacro %}

{% macro install_date_precision(column) -%}
    {%- set body = _install_date_body(column) -%}
    {%- set p = _install_date_patterns() -%}
    (case
        when {{ parse_install_date(column) }} is null then null
        when regexp_full_match({{ body }}, '{{ p.day }}') or regexp_full_match({{ body }}, '{{ p.day_first }}') then 'day'
        when regexp_full_match({{ body }}, '{{ p.year }}') then 'year'
        when regexp_full_match({{ body }}, '{{ p.month }}') then 'month'
    end)
{%- endmacro %}

{% macro install_date_qualifier(column) -%}
    (case
        when {{ parse_install_date(column) }} is not null
            and starts_with({{ _install_date_text(column) }}, '<') then 'before'
    end)
{%- endmacro %}
