from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "material" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "title" VARCHAR(200) NOT NULL,
    "kind" VARCHAR(16) NOT NULL /* ARTICLE: article\nWHITEPAPER: whitepaper\nCASE: case\nVIDEO: video\nWEBINAR: webinar */,
    "url" VARCHAR(1024),
    "tags" JSON NOT NULL,
    "created_at" TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS "partner" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(128) NOT NULL,
    "tags" JSON NOT NULL,
    "created_at" TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS "salesperson" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(64) NOT NULL,
    "oa_openid" VARCHAR(64) UNIQUE,
    "wecom_userid" VARCHAR(64) UNIQUE,
    "team" VARCHAR(64),
    "daily_cap" INT NOT NULL,
    "active" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_salesperson_team_e142d2" ON "salesperson" ("team");
CREATE TABLE IF NOT EXISTS "code" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "kind" VARCHAR(16) NOT NULL /* BOOTH: booth\nMATERIAL: material\nSALESPERSON: salesperson\nPARTNER: partner */,
    "channel" VARCHAR(8) NOT NULL /* OA: oa\nMP: mp\nWECOM: wecom */,
    "scene" VARCHAR(32) NOT NULL UNIQUE,
    "campaign" VARCHAR(128),
    "team" VARCHAR(64),
    "batch" VARCHAR(32),
    "serial" INT,
    "tags" JSON NOT NULL,
    "permanent" INT NOT NULL,
    "ticket" VARCHAR(256),
    "url" VARCHAR(512),
    "page" VARCHAR(256),
    "config_id" VARCHAR(64),
    "qr_code" VARCHAR(512),
    "welcome_text" TEXT,
    "ready" INT NOT NULL,
    "expires_at" TIMESTAMP,
    "created_at" TIMESTAMP NOT NULL,
    "backup_id" INT REFERENCES "salesperson" ("id") ON DELETE SET NULL,
    "material_id" INT REFERENCES "material" ("id") ON DELETE SET NULL,
    "partner_id" INT REFERENCES "partner" ("id") ON DELETE SET NULL,
    "salesperson_id" INT REFERENCES "salesperson" ("id") ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS "idx_code_campaig_a45641" ON "code" ("campaign");
CREATE INDEX IF NOT EXISTS "idx_code_batch_b33850" ON "code" ("batch");
CREATE TABLE IF NOT EXISTS "prospect" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(64),
    "company" VARCHAR(128),
    "title" VARCHAR(64),
    "department" VARCHAR(64),
    "industry" VARCHAR(64),
    "company_size" VARCHAR(32),
    "tags" JSON NOT NULL,
    "owner_assigned_at" TIMESTAMP,
    "profile_score" INT NOT NULL,
    "behavior_score" INT NOT NULL,
    "consent_version" VARCHAR(32),
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "first_code_id" INT REFERENCES "code" ("id") ON DELETE SET NULL,
    "merged_into_id" INT REFERENCES "prospect" ("id") ON DELETE SET NULL,
    "owner_id" INT REFERENCES "salesperson" ("id") ON DELETE SET NULL,
    "partner_id" INT REFERENCES "partner" ("id") ON DELETE SET NULL
);
CREATE TABLE IF NOT EXISTS "identity" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "kind" VARCHAR(16) NOT NULL /* OA_OPENID: oa_openid\nMP_OPENID: mp_openid\nUNIONID: unionid\nEXTERNAL_USERID: external_userid\nPHONE: phone */,
    "value" VARCHAR(128) NOT NULL,
    "sealed" TEXT,
    "created_at" TIMESTAMP NOT NULL,
    "prospect_id" INT NOT NULL REFERENCES "prospect" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_identity_kind_81d689" UNIQUE ("kind", "value")
) /* One way to recognise a prospect. A phone is kept as a keyed digest (`value`, for lookups) */;
CREATE TABLE IF NOT EXISTS "code_artwork" (
    "source" BLOB,
    "png" BLOB,
    "code_id" INT NOT NULL PRIMARY KEY REFERENCES "code" ("id") ON DELETE CASCADE
) /* The images of a code, kept apart from the code so that lists never load them: the QR as */;
CREATE TABLE IF NOT EXISTS "interaction" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "source" VARCHAR(8) NOT NULL,
    "kind" VARCHAR(64) NOT NULL,
    "dedup_key" VARCHAR(191) NOT NULL,
    "actor" VARCHAR(128),
    "scene" VARCHAR(128),
    "payload" JSON NOT NULL,
    "received_at" TIMESTAMP NOT NULL,
    "processed_at" TIMESTAMP,
    "claimed_until" TIMESTAMP,
    "attempts" INT NOT NULL,
    "code_id" INT REFERENCES "code" ("id") ON DELETE SET NULL,
    "prospect_id" INT REFERENCES "prospect" ("id") ON DELETE SET NULL,
    CONSTRAINT "uid_interaction_source_574830" UNIQUE ("source", "dedup_key")
);
CREATE INDEX IF NOT EXISTS "idx_interaction_process_2b062f" ON "interaction" ("processed_at");
CREATE TABLE IF NOT EXISTS "opportunity" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "score" INT NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "reason" VARCHAR(256),
    "created_at" TIMESTAMP NOT NULL,
    "prospect_id" INT NOT NULL REFERENCES "prospect" ("id") ON DELETE CASCADE,
    "salesperson_id" INT REFERENCES "salesperson" ("id") ON DELETE SET NULL
);
CREATE TABLE IF NOT EXISTS "outbound_message" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "purpose" VARCHAR(64) NOT NULL,
    "channel" VARCHAR(16) NOT NULL,
    "recipient" VARCHAR(128) NOT NULL,
    "payload" JSON NOT NULL,
    "status" VARCHAR(16) NOT NULL /* PENDING: pending\nSENT: sent\nDELIVERED: delivered\nFAILED: failed */,
    "attempts" INT NOT NULL,
    "next_attempt_at" TIMESTAMP,
    "wechat_msgid" VARCHAR(64),
    "last_error" VARCHAR(512),
    "created_at" TIMESTAMP NOT NULL,
    "sent_at" TIMESTAMP,
    "opportunity_id" INT REFERENCES "opportunity" ("id") ON DELETE SET NULL,
    CONSTRAINT "uid_outbound_me_purpose_2ca89e" UNIQUE ("purpose", "channel")
) /* A message to send through WeChat: durable, retried with backoff, sent once per purpose. */;
CREATE INDEX IF NOT EXISTS "idx_outbound_me_next_at_fa7274" ON "outbound_message" ("next_attempt_at");
CREATE INDEX IF NOT EXISTS "idx_outbound_me_wechat__d0886b" ON "outbound_message" ("wechat_msgid");
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSON NOT NULL
);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        """


MODELS_STATE = (
    "eJztXW1z2rgW/isaPrUz2U5CmzTl3rkzJqEtdxPIJbTd3WbHK2wBmtiSa4tQ7t7+9ysZG/"
    "yODZgYV192U+kc2zx6Ozp6ztHfDZPqyHBe3UKGbAyNRgv83SDQRPyPWN0JaEDLWteIAgZH"
    "xlI4KDVymA01xsvH0HAQL9KRo9nYYpgSXkpmhiEKqcYFMZmsi2YEf5shldEJYlNk84qvf/"
    "JiTHT0HTn+P61HdYyRoYc+F+vi3W65yhaWW9Yl7L0rKN42UjVqzEyyFrYWbErJShoTJkon"
    "iCCb/xzxeGbPxOeLr/N+qf+Lll+6Fll+YkBHR2M4M1jg547UdVlDVXv9oXrfGapqowBAGi"
    "UCXP6pjvvrJ+ITfmmevXn75vL1xZtLLuJ+5qrk7Y/lq9fALBVdeHrDxg+3HjK4lHAxXoPK"
    "MOOPi+F6NYV2MrArhQi2/KOj2PpIZoHrF6zRXfeoQ8Brwu+qgciETQWmp6cZYH5WBlcflc"
    "ELLvVSvJLyIbAcGz2vqrmsE4ivEX7kPy0Z4A6ZmS7IXf5NkGgoBravW2WsG8pg2L266bQA"
    "tBnmiDyQLx+7w86dctcZtMB8ihmyoIXsB3Kl3HMxDTpc5nP3utNvgSesI8o1Ou1uTxHiaI"
    "QJdH9e0dY7u8jReGcXqW0nqsJNN7ONIkPDE9+qsbw5pZrj4uy0+SYPtlwsHV23MowvgxMn"
    "DvC/7/u9lLnHk48grGONgf8BAzux6X1fw6Lxz/GMaAJFMJphg2HivBLv+1ejpAbIgFvgI5"
    "5sOs43Iwjyi1vltyj+Vzf9tgsZddjEdp/iPqAdaQrNRgIyFbJ4g1zzGoZNlNwoYc1o03iq"
    "r/w/qjNv5R8L/AfqfWIsvGGa0TTD7m3nfqjc3oXa51oZdkRN0y1dREpfRGek1UPAl+7wIx"
    "D/BH/0e51oM67khn80xDfBGaMqoXMV6gErxS/1Ufsh7KvxY8AYEAUjqD3Ooa2roZpA9+AG"
    "YcJQbXtq738dIAO6wMb7gGdmXvH/Hd9E+MPv7n6p3wkEarRJ03CMV5lNM1oCCZy4P0m8W7"
    "zJg+qOr6TENY5jxrpflWmrWwEhaarXxVR3/1/AHPHlq2w8bmuQNC/z2CPNy3RzRNRJa0Ra"
    "I0c3EKQ10rBs6lhIYztaJHfeY2pklYQGkbTZDmiz3UMD8d5kO+63xuy2YHWm7eZEBKX9Ju"
    "232tlvF3ncSRfpzqSLmCuJQpVaiCR13HSEQ0p7cds9bwcuGeM50qipzhxkF4M5qieR3oQ0"
    "Q9AsdCjjyZfkeq4TtDrExkLVoFVghQvpbF7o9jUdn59WeqVbY8rtE/yUsLa1KTUQJMmgrp"
    "UiiI64VlmQ+j35sHvkdr9/E9qDtbvDSI/9dNvuDF6cuR2ZC2GGkqGWO+P0Xi13xnJnnGtn"
    "LFCcWarcIEv3wbboUMuiNuOfzPCuKPVXj1rUCKwyfS1dHREm4EpwtKzqTrK8LDgotcnF0u"
    "gTBOZwARgFNt/LTAh2EIDAn2xfAQVYvGERwA54RBYD0OHVj2iBdKDjCXIYePHXEzRm6K8T"
    "MKY2MCjlE5DjLihBjMt70wOBRAcOggaXnGM2BWyKgPBVCG2utKziWvzVzpTOAWbAhM4j0l"
    "/+w5W1DN68vCXMEbLF6wl64n84jNpIf9U4SfQ3fV0xmNxvavwpHVDP6ICqPROtr6j9u06v"
    "e90CK9fOA7m9W5Wa1qr0U6/bd8v4R1G3pPPbsDPoKTfqp/vOQNSg7wzZBBqe6+KB3H3k5l"
    "1rOQKjQ/d5GGrLYZXYpsljZaVQ5Yas0qnwcl6MQzzkvSMZ4rVGHZiAWbsoPmKyj35Xm6ib"
    "fu+DLx49D5Yb3J9zgxtsdd/AUQst/BGtw3nmKm4ExFwHcaDjKL/nhhyekF/RImYJ7OwkqB"
    "rIabsWXmzD+coejXYwjgH/5Wjpm7tS7q+U607jR7pfplSOoI9+Ekkw0DIZLMGglDxmPqYB"
    "nmXlH/SYuWLGStmHRxo1LUgWReANqNQP4XJ4mIcNSas0wCWcfyLBDjcRSTAB0iEOa0mcN+"
    "PMf9aMv6/QXBHUkRjnno5VB/+30IQR1asf1q+bObB+3UzFWlRJdnxF2fF0zkFToePw7dpW"
    "npLEB+zBYVKxIXEk/hEfk00OkjE2kOpofJtezEUS1juck+RY2EsjNIVPmNqFsY0rSnBjfC"
    "X+eG41qk/IdrxT8PyrdExVLtSbF2rpQE+Hvr4O9Jmlb9nqYU3Z6lVp9QSzIMZCGmPbYS6P"
    "rdjBSUxvq4WrahPrnpcuE9kTPi7442kxdOOKEt44vMtNSCFggyoS0jikXt6HgoeoISUJ68"
    "YjVLcX7uH8NBISelwY5z1BDQ7Z0PEp/wDQ+3Rz00jqwfs4nV4/qZ7IhsdtDmzXi/4e4K0X"
    "tTuKbcw+ygFvYNXfR/etXQRGFOO4lZQCcp64F4/PvTMXP8geP7JtTq6whSXou2FUv64ZOb"
    "hjSFBh+LN37UzrJ9UUq2eLgjmawVcmBcxdgxPoX/7anE798o0ASfs6qk3JCfiJgzva/f7w"
    "YwuMKGXTB3KrDDuDrnLTAn5i8gdyr9x07u86g/t+rwUCeXQeyJ0yGPZENuLA/uL5gze0KS"
    "QEpaQY3txqAfVKN1xfEeE4Ig5HBOCIXM9X/VuR6Vmj5jYNkYdylk44iwd4aIgUYo+sFPaD"
    "eoUSmZRwGAVNC/KNT6Fzv4BO7RKalMOYrFa6mFpxzEaQadMi4K4Uatd39z89OKsrRXJag2"
    "sF6aiO+/8lRy8V6kNz9LjlyfdtiSzrzKxIIb0DJkZalRxtZiSGtUdUiNS+1qjfQtg8z7Nd"
    "4VLpV9mcy/tQUsA9P8uzEnKpVHDduujh7aTQNsSXrx+8pfRd/sYxniQejWdSENdK9QN6/9"
    "byNzvlgDEd44BK/RAuZaaYI0OjJlIZ+p6w3qUnpojq1QHuQ6enEFzChJiuTJtupSMTXeY3"
    "59B3C3P7egtCa1hThrVUh78apy1Lsnr6QnKctOU8ZHUv/2ahc8CQjnT+JNCVvXOwglzlsJ"
    "YEVrJqDwRr4IC2GLRxRQnvRtJy5FoZSV3eTFCM9zNJYN4nvoUJzMEr6HcEN3jnfT3RjSzs"
    "OeBdWlhydsiHb8ge3YG5vKSay7z9KbBLam4BrAqRTQPXt9hsTu3HdET7BA0p/0++jP/K+n"
    "E1wrUgL9cHIYWeG8Aom6WrBhpnc6L64RQBbPKvcgAdAwjEE068RPFiuQVjm5puNndRAxzK"
    "/4bMPen3E7obFOpCwmy5cv8ZAOh+VShNfUnveSBf0JUQ1G3kJqB/YWKCf+GT48SGJhAZ7L"
    "kAf7J7N8VLt8BNTc+/y0UN3PU+nAAb8f5jIx1QvkylpabPS1YuHly9a1h1xRiCJfOWHTqz"
    "taS7ozCB9iJlB7jSiXrUF2wZh3CUE0+iR93jm6y8ep+VQbvbUwa/J59itBP4Ke3fhx0l6t"
    "Tgn1MIc09BAl4A8Nh+PN0gjC/d4Sko3lj+orzfgM1qTT55jfG0SM3kHM273T0TsByTrp8J"
    "G5YZN9BEBPcaifM1MEXqSOf7lEe02O32lTae/CwxOu+azdev3zZPX19cnr95+/b88nS16M"
    "Wrsla/dveDWABPgscs26+IGREJaethpQJBtqRQ7DncIz1OKhnbY4iNqgz9Zz3XFEA4pFRD"
    "mM/eneUJ+Xh3lh7yIepiV67SBC9zOsorhTqwfg5x789hw8J+PoAtuBA+gDjE6fEKAZXDhy"
    "w8z3aklOAEG2kIP21Fu4mo1pB3cyQ8m1z0KsumGnKcrVo6qnsQIt0zbC5r0dCaAXkT6OqM"
    "MJxwPrqBShdVlpzJKrc1ZAyZVtJRYeoGPagic1THc1Qf2sVfsdGxd8bcs93mV0NgM0hdz3"
    "OZX8Uwzk03yrjLL5kQI1Ml7uB6z8OCKTM5VjCfWIKfPpJuLN1PTyOCMmPWMU2eJ1l+9oLX"
    "fchbPtK53AyyWYJBmuEtW2kczuPbEHe/N8qCtORkYTaCidztdIjXGvXzSJYTIi6D0X7CYD"
    "R59biM8DkaeCu3GaxaH97HbnDFGkrpzHtA+KcIkcgdQJUnTsJEjiMIx3HwC2WZnrERnRH9"
    "dvm0+mBfaqLpKGpJ++k4sBl7ak9YNQPSG8ntCvDEAaPAQS7326azyRQsWeMtoM9s8QrBAO"
    "coIh3MMZsCgQEdj0+EDnM54YB3SmDNbG5JLPnhIXJ7ie9JpOp5AqLeT+m7E1NPOgZ2dAwE"
    "GiTvXiugUkMGUwk3d2elvk7ZYx1HuusKOQw0bOHEDJRZPoOAUh1hlkymWjGZshyPmzPoP4"
    "sT0uIWBV4G0xRogcZdp3fd7X1oAU//gdx3esOWa2w8kOvOTfdzZ9C55sYJMvCTCH97IO+V"
    "7o0oGkNsID1q6DzPtCTZC3v2shD0nakeRFu4LhPUJdOrwuyfOeKGEFNNZ1IslWlUr3bZ6f"
    "dvpBrQYSqy7WJE+7BW/Y5eSklpKo9e0tGv79GLsF22aPKAmmSqVnmtCnBnCl70HVOUB0Cb"
    "76UOM5V2PKEodh9jxZDOe0IR72eV4rApyMbatJHgbvdqTrK87HAtI0lrxzTGTzJ803xn7+"
    "BiPKCASg09es3z81xMoPMMJtB5zElhJeTBy4itXYrXEN2z09M8DqDT03QPkKiLXcXBEv3S"
    "6f7SgIr0lxb0l+6UhWbXxezH/wEoPanf"
)
