-- Search folds diacritics, as SQLite's FTS5 tokenizer does (unicode61
-- remove_diacritics): "cafe" finds "Café". The configuration reads words as
-- 'simple' does (lower case, no stemming) after unaccent has folded them;
-- documents and queries both go through it. Releases indexed before this
-- migration keep their words as they were until they are edited.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH CONFIGURATION herald_search (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION herald_search
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH unaccent, simple;
