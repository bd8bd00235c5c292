-- The baseline: reading 10 precomputed rows through an index.
\set u random(1, 943)
SELECT item_id, score FROM precomputed WHERE user_id = :u ORDER BY score DESC LIMIT 10;
