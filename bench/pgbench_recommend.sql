-- neumf_recommend over the whole ML-100K catalogue (1682 items), seen items excluded.
\set u random(1, 943)
SELECT item_id, score, rank FROM neumf_recommend('ml100k', :u, 10);
