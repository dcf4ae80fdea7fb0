from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "prospect_merge" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "reason" VARCHAR(64) NOT NULL,
    "moved" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "merged_id" INT NOT NULL REFERENCES "prospect" ("id") ON DELETE CASCADE,
    "survivor_id" INT NOT NULL REFERENCES "prospect" ("id") ON DELETE CASCADE
);
COMMENT ON TABLE "prospect_merge" IS 'Two records found to be one person: `merged` was folded into `survivor` (what moved,';
        CREATE TABLE IF NOT EXISTS "share" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "key" VARCHAR(64) NOT NULL UNIQUE,
    "parent_id" INT,
    "created_at" TIMESTAMPTZ NOT NULL,
    "material_id" INT NOT NULL REFERENCES "material" ("id") ON DELETE CASCADE,
    "prospect_id" INT REFERENCES "prospect" ("id") ON DELETE SET NULL,
    "salesperson_id" INT REFERENCES "salesperson" ("id") ON DELETE SET NULL
);
COMMENT ON TABLE "share" IS 'One sharer''s link to a material. A salesperson''s share is what their card sends; each';
        CREATE TABLE IF NOT EXISTS "read" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "opened_at" TIMESTAMPTZ NOT NULL,
    "seen_at" TIMESTAMPTZ NOT NULL,
    "seconds" DOUBLE PRECISION NOT NULL,
    "progress" DOUBLE PRECISION NOT NULL,
    "closed_at" TIMESTAMPTZ,
    "material_id" INT NOT NULL REFERENCES "material" ("id") ON DELETE CASCADE,
    "prospect_id" INT NOT NULL REFERENCES "prospect" ("id") ON DELETE CASCADE,
    "share_id" INT REFERENCES "share" ("id") ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS "idx_read_seen_at_42b78c" ON "read" ("seen_at");
CREATE INDEX IF NOT EXISTS "idx_read_closed__32693e" ON "read" ("closed_at");
CREATE INDEX IF NOT EXISTS "idx_read_prospec_93b040" ON "read" ("prospect_id");
COMMENT ON TABLE "read" IS 'A prospect reading a material: seconds measured by the server from the heartbeats it saw,';
        ALTER TABLE "prospect" ADD "email" VARCHAR(254);
        ALTER TABLE "prospect" ADD "consent_at" TIMESTAMPTZ;
        CREATE INDEX IF NOT EXISTS "idx_identity_prospec_0d80d9" ON "identity" ("prospect_id");
        CREATE INDEX IF NOT EXISTS "idx_prospect_owner_i_eec94d" ON "prospect" ("owner_id");
        CREATE INDEX IF NOT EXISTS "idx_prospect_merged__68b8c5" ON "prospect" ("merged_into_id");
        CREATE INDEX IF NOT EXISTS "idx_interaction_prospec_9447e8" ON "interaction" ("prospect_id", "id");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_interaction_prospec_9447e8";
        DROP INDEX IF EXISTS "idx_prospect_merged__68b8c5";
        DROP INDEX IF EXISTS "idx_prospect_owner_i_eec94d";
        DROP INDEX IF EXISTS "idx_identity_prospec_0d80d9";
        ALTER TABLE "prospect" DROP COLUMN "email";
        ALTER TABLE "prospect" DROP COLUMN "consent_at";
        DROP TABLE IF EXISTS "prospect_merge";
        DROP TABLE IF EXISTS "share";
        DROP TABLE IF EXISTS "read";"""


MODELS_STATE = (
    "eJztXW1z2rgW/isavtx0hs0ktGm72Tt3BhK65W4CuYTuW+k4ii3AE1vy2nIod2//+5X8jt"
    "+wARPj6sumK+nY5tHb0TnPOfq7pRMFadbpLaTIVKHWugR/tzDUEftHoq4NWtAwwhpeQOGj"
    "5jaOtnq0qAllyspnULMQK1KQJZuqQVWCWSm2NY0XEpk1VPE8LLKx+peNJErmiC6QySo+f2"
    "HFKlbQV2T5/2s8STMVacra56oKf7dTLtGV4ZQNMP3gNORve5Rkotk6DhsbK7ogOGitYspL"
    "5wgjk/0c/nhq2vzz+dd5v9T/Re6Xhk3cT4zIKGgGbY1Gfu6jFJa1JGk4mkj3/YkktUoAJB"
    "PMwWWfajm/fs4/4YfO+Zt3b96/fvvmPWvifGZQ8u6b++oQGFfQgWc4aX1z6iGFbgsH4xBU"
    "qlL2uASuVwtopgMbCMSwZR8dx9ZHMg9cvyBENxxRh4BXh18lDeE5XXBMz85ywPy1O7762B"
    "2fsFav+CsJmwLu3Bh6VR23jiMeIvzEflo6wH1s6w7IA/ZNEMsoAbYvW2esW93xZHB1078E"
    "0KQqQ2SKf/s4mPTvunf98SVYLlSKDGggc4qvuvesmQwt1ubXwXV/dAmeVQURJtHvDYZd3h"
    "w9qhg6P69s752/LdB5528z+45XrXedbWplpobXfKvO8taUes6L87POmyLYsmbZ6DqV6/hS"
    "OLeSAP/7fjTMWHu89jGEFVWm4H9AU63E8r6vadH658zGMkcRPNqqRlVsnfL3/atVUQfkwM"
    "3x4U/WLesvLQryyW339zj+VzejngMZsejcdJ7iPKAX6wrZRBwyCdJkh1yzGqrqKL1T1iXj"
    "XeOJnvr/qM+6VXwusB+ojLC28qZpTtdMBrf9+0n39m6tf667kz6v6Tilq1jpSXxFCh4Cfh"
    "tMPgL+v+DP0bAf78ag3eTPFv8maFMiYbKUoBLRUvxSH7VvXL+aPUWUAV7wCOWnJTQVaa0m"
    "MjyYQpgyVXue2IdfxkiDDrDJMeCpmVfsz/EthN/84e6XhoMgRIcPkB3RGbNHHOHcKASPxX"
    "bMXUfPPX9GkwDis450SNY8TFbpHT1eAjGcOz+Jv5u/yQPrjmli2DlcJQ57flU776xnRBqJ"
    "o97B9pmKj3rO3xLqrN++zoePbRXazvsi+mznfbY6y+uENiu02aObCEKbbRkmsQwk0x11kj"
    "vvMQ3VaoXOf0id7R5qiI0m03K+NaG3RatzdTcr1lDob0J/a5z+9raIOfJttjHybcIUSaBE"
    "DITTBm42wmtCezH7vuwArhjjJZKJLtkWMsvBHJcTSG9CmiKol3Lqee0rcl00CVoFqtpKkq"
    "FRYodbk9m80e1rOb44q/VOF2LK9BP1OWVv6xGiIYjTQQ2FYog+MqmqIPVH8mHPyL3R6Gbt"
    "DNYbTGIj9tNtrz8+OXcGMmukUpQOtTgZZ49qcTIWJ+NCJ2OOom1I4oAszAfH4BM7RnyIYR"
    "CTsk+m6q4wjYJHrRoEVpW2qIGCMOVwpRiigrp2nhVKjbbaZIJqjTACS7gClACTnfXmWLUQ"
    "gMDfjE5BFxisYxFQLfCEDAqgxaqf0AopQFHnyKLg5OEZajZ6aIMZMYFGCFugLWfDjWJc3Z"
    "umGGIFWAhqrOVSpQtAFwhwWw6XZkJuFZNir7YWZAlUCnRoPSHl1U9OW0Nj3ct6Qn9EJn89"
    "Rs/sHxYlJlJOW+1Ue9zngCHofFPrS8xA9znY0CV2dP4i7HWHtNc1nvg56kqju/5wcH0JAk"
    "vYFN/eBaW6EZR+Gg5GThn7KOKU9H+f9MfD7o306b4/5jXoK0Umhppn6Zniu49MG750J2R8"
    "Jr8MIdSdZal9mj5XAoE6d2SdnOjuMpmEeMJGRzrEoUQTiLd5h042Y/I95cGZ82Y0/NlvHn"
    "efC3vA92kPiPZ6VCsovvHHpA5nyKy5EpCwtCSBTqL8gel16hz/glYJTWBnm0rdQM46xLBi"
    "Ey4DfTQ+wBgG7Jcj15R51b2/6l73W9+yzViVUip99NM4lZGeySFVRltV6ZX/3CJLNjwcjb"
    "8NPrd0ZLKfJDHYiTgFNNtrXzNlpmpfnEx0A+JVGXgjIs1DuBpa62EjRGsNcAXuZMTJ9jrC"
    "KSpCNsTrUgLnzTizn2Wz95VaK6IyAuPCy7Fkqf8ttWDE5ZqH9etOAaxfdzKx5lXrWCMdqq"
    "WCkwOB5qHbuSgylFmr7LD9CxGbXN9oDvc4Ay2LnZe3MlWlPmAPFquazYojMVD5mGyyUM1U"
    "DUmWTMyUzSTPRrUudzgr1bGw7R7RAj6rxCyNbVJQgJvg17HHM7Vcekam5bESiqtBCdHm7d"
    "X714R82LbwYKxJiv2gzvuB8FNlT7Dm+qlsQ9my19clRa/XpddTJnuC+zdTTYs67Npy/smE"
    "3FbqSc0W8X0rKDFvUHF0k4IC3iS8geutOLBREQFpElIvG01JrsKakIB1I1PBGYVJgEvTFG"
    "KB6seFcVGiQnTKrrEU2AeA4aebm1baCN4DupH0Tc1Edn3eFsA23PT3AG+zAk7i2Cb0owLw"
    "Rnb9fQzfxsWFxTFOakkZIBeJxvOiKHaOgInGbBzZMadQsJAL+m4YNW9ops1juIQpLvBtcL"
    "rlD2z0gNpTDGyjgRKZT0WU5w74sGLEebDs2btuceGTGorVi0XEHs3MOwT/213Nc0jgwXK/"
    "mQku6UHbjSGyk6UbsWoqFpgRGys8jvQRAR6r6p62L8GDu8k/gCXkjTQFKYArouDBss1n9Z"
    "mYD+BkuYAU6OQZKe1WDO5KXjLFy8WqDZYLhF+dgskCAfcBP3BVJAi8BezksLLcaFtKdAYH"
    "f+dyQSzkv9HRqR+Axncc/l10gabYf2cbWARADNj3AFVhT1M1DczYALXc2Frn47OiaGP8ec"
    "GPPyQ/nmkQVjk/eSjRwKDK/bMynWmYxDebyRYI1IPKxl/bGCqbcGNnz4PjdGgWcWP7G9g2"
    "7jYRapnlF/L3/nK4xqQEsptdQz5khzUA1w3kohbg2ABLD2ItYr0U4Gab12sXH+x4jlKOhb"
    "5HKfs06LuuRKbuo1ov2zlnmsZn/umNRpOPl+CRELqY4lumYo0H3ZtL4F8SO8X33Zv+/V1/"
    "zHTgSxDJST/Fd93xZMhvhox4xV8+s4+8gBijjIiqzb0WEa91x426PFcTT9LEszPxezevRr"
    "f81k2Z6Nt0RJF44+xo42T2HxnhUqGDgcB+UK9RUvAKiPJQNyBTKMrgG5VpXHLwasLl65V6"
    "vVGmrEdI5UUZcAOBxo3d/S8PVnC9e9GTdCAg6JVJ64SIH86E+tBGV6Z5snNbaoqN3BsG1u"
    "QOeMlAUHK0twxQVX5CpTKahBLN2wg7F0WOK6xVTn4CcTd9BrgX50V2QtYqE1ynLh5yMC91"
    "DPHbNw/eSsYue+NMnafa7XPDo0Oh5gG9f235LzODFp+NcUSkeQhXslIskSYTHUkUfU3Z77"
    "KzFsflmgB3nse2itzF3GGcxmbO0+kCGXFpVHF1Dn01VKZfb8FaWJcUKRbqE3WdZCkIbkr2"
    "RtJcbop3l1UpP+CajDD+pATZe36wkpSfdSkBrIgFPxSVKnTQlmRTJQQFvJv5VOsh8iLgvg"
    "CpKjHORNj9PvEtHXbv71V7APc28qhmohvb2AvA62pYYnUohu+aPrpDvL2bIEHcgZsBuwjd"
    "LIFVKbJp5Cp0ky6J+ZSN6AijCWH/KXZ7bjd8XINwLcnL9UHIoOdGMMpn6UqRzikQsblAQN"
    "XZV1mAzAAE/Alt71JRvt2CmUl0JzqR1/D4RcqjJrnn3b/8UyNQ4S30S6fdf8YAOl+1HrRZ"
    "zXum+Dd0xRsqJnIuKz3RVaz+wBbHuQl1wG87ZQ3Yk517nl85BU6oJfsuBzVwN/y5DUzExo"
    "+JFEDYNrVrAGb5lIC7JgOsGUOwYt6yRWxTTnEY9VQMzVXGCTCQiVvUV9SNUz/KhSfVou7x"
    "TQKr3q/dcW8w7I7/SPdi9FL4Kb0/Jv1u3KjBPqcU5p6AALwE4InzeJk4kfUlKNlZ/qZcUC"
    "kvmGasXotPUWU8K79YeoDOTkE3TuqYlF3dTymTvZ2bfouN23g3zFHAhRhCbI/1D3SXwEIM"
    "EMUCOoKWzfe5x5WzDVrI5DtrsPcuENuKHxFkey7bSy24TGZfqOxNU8zLZ7bJ/lgUOFs4si"
    "z2Fp4GBClt9zk8zwwXkRmYrMQk9nxxCq40YoUv4x/GXsYTLvCMDqz5FM8JUz3+slVE204z"
    "VUfEpj9xVcSV5UL8RnMGsJOkIXJ0ACcPunHKGzy8Kqgd7HKneU+dfy/BTT92Oq9fv+ucvX"
    "77/uLNu3cX788CbSFZlac29AY/c82hHfVPbVYl+L3f293VEhVsoCvxSFyHhTzGFkJ4iy6O"
    "iB2mg19gm2xI/zpbTooZkp0YM6MCAplY5864UFUztqr7YXK683r0qXfTB3fj/tXgfuDx1o"
    "P+cyp5UUisGfe7N3HV39uLS0EcFRIYb8TY1UK2obVEBQ/CXRIL1XYL1cvxLeqmXuydcLF+"
    "JXtRxsW6lEA2jXPBz1sl2RYREcGz2MizMCIeuF0JAM1PrRKbswXy1rwIBeBY4c3jAKTCa/"
    "l5f3dlADQrf3Ac1+iaWNr1X2VGIBf3FOtk0CHZ5smg7zfbJ0fYM92Z/7CApuInnhs1tBue"
    "gm40/Qpr49n5LOAkaaULpJpAZr8WWIid234CCLoh82u2yUreMsWeOXGOKE/86sqQmdecLD"
    "GYERMY/OJePOemSYLbflJYg7XF9IG/IrResn+tHPslN3k6Bkw3MSyQF2wIgZPIN4Kp3Tn/"
    "scP+XMw6Z1P7zex8llbGfgvbgDUE5zZ6xd/mJshFyil4eEKrB4bBE7K83xNAFPyUECMni6"
    "5JliILbQ09n6wnk6hmx8l5zRuXdGb/QYjuNC3N1w5lhJ6bcsmwiNT5DiN1hJGjeUaOhi9U"
    "Iq7kkPYOcSBvVXogF2E7hwnbeRGz3ZEinGe1Kxf8cLirvI4E6krvE4oGPaTYiGIxEdmWIj"
    "XWcK9JpD9H2L0KUmxD4gffL7mErLZjdBC0rHrSsrIY3jkZdrP43VtaO15aBasyfXF23u8M"
    "M9IR5PqujSUpXIBKILwm1ECYz388L4Aza5WdwpjXrSPN9o+0yz6yUQ4EmpDF6gA5og+c5v"
    "z7A9iAKx7TloQ4O/9uROTwKXhfhuZVSbJdE8lIfd7KOB0TbaB1+kis0YU4d0zpl5G1HbMy"
    "LivIlTXuaFmDrAsUycZUTbEtbuLQxoRFDsA69zWkFOlGWuqLzAN6VORw3qWquOh7d9UePG"
    "S9ZrND+OpqDGztyLM1w3i/Vvj4urAHaAtGkh8prFmh5C9N7RwZPHCaoUlXrRTjfbS6nWe8"
    "J7GG4gbIY1o823l2dpmkkbez+Q5+e6FBJTgkFFI7RSHNsZYFEoez+Dpx662qIK348ksTwV"
    "RSQzbEoUTzLJLVXHkiKJvfIWVTRE8KZuHRwFu7w2DdxnBlkZSCWVgds7AI9U1HlsUTaCbB"
    "L8N+G9n0kdhYuXWf1hzsKyXCxVFLO08ngc05U3uNJT3SukCWN685j2vkIYp+AjTgZkG9BI"
    "pt8lfwjKYMRaSApUoXgGNAZrM2l6FOjlPABiUwbJNpEm6+01iOt8rek8rf8xrwev+K+jh9"
    "TxgGDmkYiHRI0bNWRKSBDKb9E8X8gV4C4ohIAyGuwmAgq4aaeqNyns0gItREmAWTqVFMpj"
    "zDYx/bekIdf3kjpME0CtVNDl2iB1p3/eH1YPjzJfDkp/i+P5xcOsrGFF/3bwa/9sf9a6ac"
    "IE195uncp/hDd3DDi2ZQ1ZASV3ReZlkS7IU9W1kw+kolD6ItTJcp4oLpVWP2zxIxRYhKuj"
    "UvdzV3XK4in0CT8mJo0KISMs1yRPt1qea5Xiq5olu4XrLRb67rhesuW+WmxgfdquqiQdep"
    "ewvtVRHuTDkHUFJQOIA2OoBiTKUdPRQxgtRxIV3UQ5EcZ7XisHWRqcqLVoq53atp51nZYd"
    "hGkNaOaY63c2zT7GRvqeV4QBGRBlr0OhcXhZhAFzlMoIuEkcJIudc1J7bWbd5AdM/PzooY"
    "gM7Osi1AvC4eb4Fpql06214aERH20pL20oTKcMjN7Nv/AZqGk0A="
)
